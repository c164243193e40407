"""`vmmig demo` end to end: a real process, embedded services, then its database.

The checks read the demo's SQLite database, not what it printed.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa


def vmmig_command():
    script = os.path.join(os.path.dirname(sys.executable), 'vmmig')
    if os.path.exists(script):
        return [script]
    return [sys.executable, '-m', 'vmmig.cmd.cli']


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Run the demo once; yield (process, migrations by id, instances by name)."""
    home = tmp_path_factory.mktemp('home')
    state_dir = tmp_path_factory.mktemp('demo') / 'state'
    # A HOME of its own: no operator's ~/.vmmig/vmmig.conf may change the outcome.
    env = dict(os.environ, HOME=str(home))
    process = subprocess.run(vmmig_command() + ['demo', '--state-dir', str(state_dir)],
                             env=env, capture_output=True, text=True, timeout=600)
    engine = sa.create_engine('sqlite:///%s' % (state_dir / 'vmmig.sqlite'))
    try:
        with engine.connect() as connection:
            migrations = {row.id: row for row in connection.execute(sa.text(
                'SELECT * FROM migrations ORDER BY id'))}
            instances = {row.name: row for row in connection.execute(sa.text(
                'SELECT * FROM instances'))}
    finally:
        engine.dispose()
    yield process, migrations, instances


def of(migrations, instance):
    """The migrations an operator asked for (the HA recovery's evacuations come last)."""
    return [m for m in migrations.values() if m.instance == instance
            and m.migration_type != 'evacuate']


def host_before_the_power_cut(migrations, instances, name):
    """Where ``name`` was when the tour cut its host's power: the source of its
    evacuation, or where it is now."""
    evacuated = [m for m in migrations.values() if m.instance == name
                 and m.migration_type == 'evacuate']
    return evacuated[-1].source_host if evacuated else instances[name].host


pytestmark = pytest.mark.timeout(900)


def test_exit_code(demo):
    process, _, _ = demo
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]


def test_completed_count(demo):
    _, migrations, _ = demo
    # The drain's own migrations (action_id set) are counted by test_maintenance_drain.
    states = [m.state for m in migrations.values()
              if m.action_id is None or m.migration_type == 'evacuate']
    # legacy-1, cache-1, web-1 (live, then cold --shutdown), db-1, app-1 (live, then
    # held and resumed), batch-1; db-1's second one is aborted; then the host of web-1
    # dies and web-1, app-1 and batch-1 are evacuated from it.
    assert states.count('completed') == 11
    assert states.count('cancelled') == 1
    assert len(states) == 12


def test_a_dead_host_recovered_without_a_request(demo):
    process, migrations, instances = demo
    evacuated = [m for m in migrations.values() if m.migration_type == 'evacuate']
    assert sorted(m.instance for m in evacuated) == ['app-1', 'batch-1', 'web-1']
    dead = evacuated[0].source_host
    for m in evacuated:
        assert (m.state, m.source_host) == ('completed', dead), m
        assert m.reason.startswith('fenced: simulated power-off of %s' % dead), m.reason
        assert (instances[m.instance].host, instances[m.instance].power_state) == (
            m.dest_host, 'running')
    # The VMs on local disks stay, and the recovery's plan says why.
    assert {n for n, i in instances.items() if i.host == dead} == {'cache-1', 'legacy-1'}
    ended = re.search(r'Plan (\d+) \(evacuate of %s\) ended partial: (.*)' % dead,
                      process.stderr)
    assert ended, process.stderr[-3000:]
    assert 'cache-1 stays: evacuate migration is not possible for storage mode ' \
        'ephemeral-local' in ended.group(2), ended.group(2)
    # What the demo shows of it: the plan, its strategy and its state.
    assert re.search(r'\| +%s +\| evacuate +\| %s +\| partial +\|' % (ended.group(1), dead),
                     process.stdout), process.stdout[-3000:]


def test_cold_migrations_keep_the_power_state(demo):
    _, migrations, instances = demo
    for name, power_state in (('legacy-1', 'shutoff'), ('cache-1', 'suspended')):
        [migration] = of(migrations, name)
        assert (migration.migration_type, migration.state) == ('cold', 'completed')
        assert instances[name].host == migration.dest_host != migration.source_host
        assert instances[name].power_state == power_state


def test_live_migration_in_each_storage_mode(demo):
    _, migrations, _ = demo
    modes = {m.instance: m.storage_mode for m in migrations.values()
             if m.migration_type == 'live' and m.state == 'completed'}
    assert modes['web-1'] == 'ephemeral-shared'
    assert modes['db-1'] == 'ephemeral-local'
    assert modes['app-1'] == 'volume-only'


def test_shutdown_cold_migration_of_a_running_vm(demo):
    _, migrations, instances = demo
    _live, cold = of(migrations, 'web-1')
    assert (cold.migration_type, cold.state) == ('cold', 'completed')
    assert json.loads(cold.options)['shutdown'] is True
    assert host_before_the_power_cut(migrations, instances, 'web-1') == cold.dest_host


def test_held_then_resumed_completed(demo):
    _, migrations, instances = demo
    resumed = of(migrations, 'app-1')[-1]
    assert resumed.hold_reason == 'change window 22:00'
    assert resumed.state == 'completed'
    assert host_before_the_power_cut(migrations, instances, 'app-1') == resumed.dest_host


def test_aborted_one_cancelled_and_the_vm_stayed(demo):
    _, migrations, instances = demo
    aborted = of(migrations, 'db-1')[-1]
    assert aborted.hold_reason == 'waiting for approval'
    assert aborted.state == 'cancelled'
    assert instances['db-1'].host == aborted.source_host


def test_refused_ones_never_recorded(demo):
    _, migrations, instances = demo
    assert of(migrations, 'gpu-1') == []
    assert not [m for m in migrations.values()
                if 'sim-d' in (m.dest_host, m.requested_host)]
    assert instances['gpu-1'].host == 'sim-c'


def test_batch_converged_with_auto_converge(demo):
    _, migrations, instances = demo
    [batch] = of(migrations, 'batch-1')
    assert (batch.migration_type, batch.state) == ('live', 'completed')
    assert json.loads(batch.options)['auto_converge'] is True
    assert host_before_the_power_cut(migrations, instances, 'batch-1') == batch.dest_host


def test_maintenance_drain(demo):
    """sim-c drained: everything but gpu-1 (passthrough) left it, each in its power
    state; the plan ended partial saying so; the host is back in service."""
    _, migrations, instances = demo
    drained = [m for m in migrations.values() if m.action_id is not None
               and m.migration_type != 'evacuate']
    assert drained and all(m.source_host == 'sim-c' for m in drained)
    for migration in drained:
        assert migration.state == 'completed'
        assert instances[migration.instance].host == migration.dest_host != 'sim-c'
    assert [n for n, i in instances.items() if i.host == 'sim-c'] == ['gpu-1']
    assert instances['gpu-1'].power_state == 'running'
