"""Two `vmmig` CLI processes at once on the embedded default (real processes, one state
directory, the demo cluster on the scaled clock).

A migration running in one survives any command in the other; two migrations at once
between the same hosts both land, with their disks. The checks read the database and
the simulated hosts' state files, not what the commands printed.
"""

import json
import os
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.functional.test_demo import vmmig_command

pytestmark = pytest.mark.timeout(300)

# Modelled seconds per real second: a graceful shutdown (one modelled second) takes
# 20 s, long enough to run other commands while a cold migration waits for it, even on
# a loaded machine.
TIME_SCALE = 0.05
HEARTBEAT_TIMEOUT = 4.0


class Cli(object):
    """The vmmig CLI on one state directory, as an operator runs it."""

    def __init__(self, tmp_path, time_scale=TIME_SCALE):
        self.state = str(tmp_path / 'state')
        home = tmp_path / 'home'
        home.mkdir()
        self.config = str(tmp_path / 'vmmig.conf')
        with open(self.config, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n[sim]\nclock = scaled\ntime_scale = %s\n'
                    '[conductor]\nheartbeat_timeout = %s\n'
                    % (self.state, time_scale, HEARTBEAT_TIMEOUT))
        # A HOME of its own: no operator's ~/.vmmig/vmmig.conf may change the outcome.
        self.env = dict(os.environ, HOME=str(home))
        self.engine = None
        self.processes = []

    def start(self, *argv):
        process = subprocess.Popen(
            vmmig_command() + ['--config-file', self.config] + list(argv), env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def run(self, *argv, timeout=120):
        process = self.start(*argv)
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err
        return out

    def rows(self, sql):
        if self.engine is None:
            self.engine = sa.create_engine('sqlite:///%s/vmmig.sqlite' % self.state)
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(sql)))

    def migration(self, instance):
        [row] = self.rows("SELECT * FROM migrations WHERE instance = '%s'" % instance)
        return row

    def wait_state(self, instance, states, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows("SELECT state FROM migrations WHERE instance = '%s'" % instance)
            if rows and rows[0].state in states:
                return rows[0].state
            time.sleep(0.1)
        raise AssertionError('migration of %s not in %s in %d s' % (instance, states, timeout))

    def where(self, name):
        """(DB host, DB power state, hosts defining it, its power state there): the record
        and the hypervisor must say the same."""
        [row] = self.rows("SELECT host, power_state FROM instances WHERE name = '%s'" % name)
        places = vfix.sim_places(self.state, name)
        views = vfix.sim_host_views(self.state)
        power = [views[h.split('+')[0]][name]['power_state'] for h in places]
        return row.host, row.power_state, places, power

    def local_disks(self, name, host):
        """The local disk files of ``name`` under ``host``'s directory that exist."""
        directory = os.path.join(self.state, 'sim', 'local', host)
        return sorted(f for f in os.listdir(directory)
                      if f.startswith(name + '-') and f.endswith('.img'))

    def close(self):
        # A command that hung (the failure some of these tests look for) goes with them.
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.engine is not None:
            self.engine.dispose()


@pytest.fixture
def cli(request, tmp_path):
    cli = Cli(tmp_path, **getattr(request, 'param', {}))
    # The first command creates the database and the hosts' state files.
    cli.run('host', 'list')
    yield cli
    cli.close()


def test_a_running_migration_survives_commands_of_another_process(cli):
    mover = cli.start('server', 'migrate', '--shutdown', '--wait', '--host', 'sim-b',
                      'web-1', '-f', 'json')
    # The VM is being shut down for the cold migration: the moment a second command
    # took the migration for an orphan and rolled it back.
    cli.wait_state('web-1', ('preparing', 'running'))
    cli.run('migration', 'list')
    assert mover.poll() is None, 'the migration ended before the other command did'
    for argv in (['host', 'list'], ['migration', 'show', '1']):
        record = cli.migration('web-1')
        assert record.state in ('preparing', 'running', 'completed'), record.reason
        cli.run(*argv)
    out, err = mover.communicate(timeout=120)
    assert mover.returncode == 0, err
    assert json.loads(out)['state'] == 'completed'
    record = cli.migration('web-1')
    assert (record.state, record.vm_location) == ('completed', 'sim-b'), record.reason
    assert record.owner.startswith('embedded-')
    # One more start of the services: the hosts report what they hold.
    cli.run('host', 'list')
    assert cli.where('web-1') == ('sim-b', 'running', ['sim-b'], ['running'])
    disk = vfix.sim_host_views(cli.state)['sim-b']['web-1']['disks'][0]
    assert os.path.exists(disk['path'])
    # Nobody is left registered: each process removed its conductor's row.
    assert cli.rows("SELECT name FROM services WHERE kind = 'conductor'") == []


def test_migrations_of_a_killed_command_are_recovered_after_heartbeat_timeout(cli):
    mover = cli.start('server', 'migrate', '--shutdown', '--wait', '--host', 'sim-b',
                      'web-1')
    cli.wait_state('web-1', ('preparing',))
    mover.send_signal(signal.SIGKILL)
    mover.wait(30)
    killed_at = time.time()
    # At once: the killed process's heartbeat is still fresh, nobody may adopt yet.
    cli.run('migration', 'list')
    if time.time() - killed_at < HEARTBEAT_TIMEOUT - 0.5:
        assert cli.migration('web-1').state in ('preparing', 'running')
    # Once it is silent for heartbeat_timeout, the next command recovers it: the VM is
    # started again where it was, and the record says so.
    time.sleep(max(0.0, killed_at + HEARTBEAT_TIMEOUT + 0.5 - time.time()))
    cli.run('migration', 'list')
    record = cli.migration('web-1')
    assert (record.state, record.vm_location) == ('failed', 'sim-a'), record.reason
    assert 'rolled back' in record.reason
    cli.run('host', 'list')
    assert cli.where('web-1') == ('sim-a', 'running', ['sim-a'], ['running'])
    # The killed command's row went too, once nothing was left of its work.
    assert cli.rows("SELECT name FROM services WHERE kind = 'conductor'") == []


def test_two_migrations_at_once_between_the_same_hosts_both_land(cli):
    before = {name: cli.where(name) for name in ('legacy-1', 'cache-1')}
    assert before == {'legacy-1': ('sim-b', 'shutoff', ['sim-b'], ['shutoff']),
                      'cache-1': ('sim-b', 'suspended', ['sim-b'], ['suspended'])}
    movers = [cli.start('server', 'migrate', '--wait', '--host', 'sim-a', name)
              for name in ('legacy-1', 'cache-1')]
    for mover in movers:
        _out, err = mover.communicate(timeout=120)
        assert mover.returncode == 0, err
    for name in ('legacy-1', 'cache-1'):
        record = cli.migration(name)
        assert (record.state, record.vm_location) == ('completed', 'sim-a'), record.reason
    # The next start: each host's agent reports what its state file holds.
    cli.run('host', 'list')
    assert cli.where('legacy-1') == ('sim-a', 'shutoff', ['sim-a'], ['shutoff'])
    assert cli.where('cache-1') == ('sim-a', 'suspended', ['sim-a'], ['suspended'])
    for name in ('legacy-1', 'cache-1'):
        assert cli.local_disks(name, 'sim-a') == ['%s-vda.img' % name]
        assert cli.local_disks(name, 'sim-b') == []
        for disk in vfix.sim_host_views(cli.state)['sim-a'][name]['disks']:
            assert os.path.exists(disk['path'])
    assert os.path.exists(vfix.sim_host_views(cli.state)['sim-a']['cache-1']['saved_state'])


# A shutdown of 5 s: the wait ends after 1 s, the abort at the end of the shutdown.
@pytest.mark.parametrize('cli', [{'time_scale': 0.2}], indirect=True)
def test_embedded_timeout_stops_what_runs_cleanly(cli):
    started = time.monotonic()
    process = cli.start('--embedded-timeout', '1', 'server', 'migrate', '--shutdown',
                        '--host', 'sim-b', 'web-1')
    _out, err = process.communicate(timeout=120)
    # The shutdown under way ends, then the VM starts again: no longer.
    assert time.monotonic() - started < 60
    assert process.returncode == 1
    assert 'still running after 1.0 s' in err
    assert 'Migration 1 of web-1: cancelled; the VM is on sim-a.' in err
    record = cli.migration('web-1')
    assert (record.state, record.vm_location) == ('cancelled', 'sim-a'), record.reason
    cli.run('host', 'list')
    assert cli.where('web-1') == ('sim-a', 'running', ['sim-a'], ['running'])
