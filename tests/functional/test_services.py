"""The conductor and agents as separate processes over RabbitMQ, on each database.

Migrations are asked for with the ``vmmig`` CLI (a process of its own, over the
conductor's RPC API); the outcome is read from the database, from the simulated
hosts' state files and from the notifications a real listener receives.

h1 and h2 are served by one agent process (vmmig.cmd.agents_bulk, one RPC
server for both, as the benchmark's agents are); h3 by a vmmig-agent of its own.
Each service connects as a RabbitMQ user of its own (tools/rabbitmq-users.sh), the
CLI as the operators' one: what the README's Trust section says is what runs here.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
DISPATCH_INTERVAL = 0.1
TERMINAL = ('completed', 'failed', 'cancelled', 'error')


def _vm(host, location, power_state='running', **extra):
    disk = {'name': 'vda', 'size_gb': 10, 'location': location}
    if location == 'volume':
        disk['volume'] = 'vol-%s' % host
    return dict(dict(host=host, vcpus=1, memory_mb=1024, power_state=power_state,
                     disks=[disk]), **extra)


CLUSTER = {
    'hosts': {
        'h1': {'shared_storage': 'nfs', 'cpu_features': ['sse4.2', 'avx2']},
        'h2': {'shared_storage': 'nfs', 'cpu_features': ['sse4.2', 'avx2']},
        # Runs nothing: the heartbeat test kills its agent.
        'h3': {'shared_storage': 'nfs', 'cpu_features': ['sse4.2', 'avx2']},
    },
    'instances': {
        'live-shared': _vm('h1', 'shared'),
        'live-local': _vm('h1', 'local'),
        'live-volume': _vm('h2', 'volume'),
        'cold-shutoff': _vm('h2', 'local', 'shutoff'),
        'cold-suspended': _vm('h1', 'local', 'suspended'),
        # 4 GiB over 10 Gbit/s takes about 3.4 modelled seconds: the link goes at 1.
        'asked': _vm('h1', 'shared'),
        'lossy': _vm('h1', 'shared', memory_mb=4096,
                     workload={'dirty_rate_mbps': 10, 'wws_mb': 64, 'link_loss_at': 1.0}),
    },
}
OTHER = {'h1': 'h2', 'h2': 'h1'}
AGENT_GROUP = 'agents-h1h2'


class Cloud(object):
    def __init__(self, services, notifications, engine):
        self.services = services
        self.notifications = notifications
        self.engine = engine

    def migrate(self, instance, live):
        """Ask through the CLI; the queued record it printed."""
        args = ['server', 'migrate', instance, '--host', OTHER[CLUSTER['instances'][
            instance]['host']], '-f', 'json']
        if live:
            args.append('--live-migration')
        result = self.services.cli(*args, check=False)
        assert result.returncode == 0 and result.stdout, result.stdout + result.stderr
        return json.loads(result.stdout)

    def row(self, table, **where):
        condition = ' AND '.join('%s = :%s' % (key, key) for key in where)
        with self.engine.connect() as conn:
            return conn.execute(sa.text('SELECT * FROM %s WHERE %s' % (table, condition)),
                                where).mappings().one()

    def wait_ended(self, migration_id, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            record = self.row('migrations', id=migration_id)
            if record['state'] in TERMINAL:
                return record
            if time.monotonic() > deadline:
                raise AssertionError('migration %s did not end in %d s: %s\n%s' % (
                    migration_id, timeout, dict(record), self.services.log('conductor-0')[-3000:]))
            time.sleep(0.1)

    def on_host(self, host):
        """What the simulated hypervisor of ``host`` holds: instance -> power state."""
        path = os.path.join(self.services.dir, 'sim', 'hosts', host + '.json')
        with open(path) as f:
            return {name: inst['power_state'] for name, inst in json.load(f)['instances'].items()
                    if not inst.get('incoming')}


@pytest.fixture(scope='module', params=vfix.BACKENDS)
def cloud(request):
    """One conductor and three agents per database, shared by this module's tests."""
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture)
        return fixture

    try:
        database = use(vfix.DatabaseFixture(request.param))
        services = use(vfix.ServiceProcesses(
            sorted(CLUSTER['hosts']), database.url, cluster=CLUSTER,
            agent_groups={AGENT_GROUP: ['h1', 'h2']}, own_credentials=True,
            extra_conf={'agent': {'heartbeat_interval': HEARTBEAT_INTERVAL},
                        'conductor': {'heartbeat_timeout': HEARTBEAT_TIMEOUT,
                                      'dispatch_interval': DISPATCH_INTERVAL}}))
        notifications = use(vfix.Notifications(services))
        engine = sa.create_engine(database.url)
        yield Cloud(services, notifications, engine)
        engine.dispose()
    finally:
        while stack:
            stack.pop().cleanUp()


def test_hosts_of_one_agent_process_are_registered_under_its_server(cloud):
    assert [cloud.row('hosts', name=h)['agent'] for h in ('h1', 'h2', 'h3')] == [
        AGENT_GROUP, AGENT_GROUP, None]


@pytest.mark.parametrize('instance,storage_mode', [
    ('live-shared', 'ephemeral-shared'),
    ('live-local', 'ephemeral-local'),
    ('live-volume', 'volume-only'),
])
def test_live_migration(cloud, instance, storage_mode):
    source = CLUSTER['instances'][instance]['host']
    queued = cloud.migrate(instance, live=True)
    assert (queued['storage_mode'], queued['source_host']) == (storage_mode, source)

    record = cloud.wait_ended(queued['id'])
    assert record['state'] == 'completed', record['reason']
    assert record['vm_location'] == record['dest_host'] == OTHER[source]
    assert cloud.row('instances', name=instance)['host'] == OTHER[source]
    assert cloud.on_host(OTHER[source]).get(instance) == 'running'
    assert instance not in cloud.on_host(source)
    events = cloud.notifications.wait_for(queued['id'], 'vmmig.migration.live.end')
    assert events == ['vmmig.migration.live.start', 'vmmig.migration.live.end']


@pytest.mark.parametrize('instance,power_state', [
    ('cold-shutoff', 'shutoff'),
    ('cold-suspended', 'suspended'),
])
def test_cold_migration_keeps_the_power_state(cloud, instance, power_state):
    source = CLUSTER['instances'][instance]['host']
    queued = cloud.migrate(instance, live=False)

    record = cloud.wait_ended(queued['id'])
    assert record['state'] == 'completed', record['reason']
    assert record['checksum']
    row = cloud.row('instances', name=instance)
    assert (row['host'], row['power_state']) == (OTHER[source], power_state)
    assert cloud.on_host(OTHER[source]).get(instance) == power_state
    assert instance not in cloud.on_host(source)
    events = cloud.notifications.wait_for(queued['id'], 'vmmig.migration.cold.end')
    assert events == ['vmmig.migration.cold.start', 'vmmig.migration.cold.end']


def test_lost_link_fails_and_leaves_the_vm_on_the_source(cloud):
    queued = cloud.migrate('lossy', live=True)

    record = cloud.wait_ended(queued['id'])
    assert record['state'] == 'failed'
    assert 'link to h2 lost' in record['reason']
    assert record['vm_location'] == 'h1'
    assert cloud.row('instances', name='lossy')['host'] == 'h1'
    assert cloud.on_host('h1').get('lossy') == 'running'
    assert 'lossy' not in cloud.on_host('h2')
    events = cloud.notifications.wait_for(queued['id'], 'vmmig.migration.live.error')
    assert events == ['vmmig.migration.live.start', 'vmmig.migration.live.error']
    [error] = [e for e in cloud.notifications.events
               if e['event_type'] == 'vmmig.migration.live.error']
    assert error['priority'] == 'error'
    assert error['payload']['state'] == 'failed'
    # The operator's view through the RPC API agrees with the database.
    shown = json.loads(cloud.services.cli('migration', 'show', str(queued['id']),
                                          '-f', 'json').stdout)
    assert (shown['state'], shown['vm_location']) == ('failed', 'h1')


def test_a_reader_is_refused_and_an_admin_request_id_reaches_the_agent(cloud, tmp_path):
    """Policy in the conductor process over RabbitMQ; the request id in both logs."""
    reader = tmp_path / 'reader.conf'
    reader.write_text('[cli]\nroles = reader\n')
    refused = cloud.services.cli('--config-file', str(reader), 'server', 'migrate', 'asked',
                                 '--host', 'h2', '--live-migration', '-f', 'json',
                                 check=False)
    assert refused.returncode == 1
    assert 'vmmig:migration:create' in refused.stderr and 'reader' in refused.stderr
    with cloud.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM migrations WHERE instance = "
                                    "'asked'")).scalar() == 0
    assert cloud.row('instances', name='asked')['host'] == 'h1'
    # A reader may read.
    cloud.services.cli('--config-file', str(reader), 'migration', 'list', '-f', 'json')

    queued = cloud.migrate('asked', live=True)
    record = cloud.wait_ended(queued['id'])
    assert record['state'] == 'completed', record['reason']
    assert (record['vm_location'], cloud.on_host('h2').get('asked')) == ('h2', 'running')
    # The first: the request's own line (later ones are the migration's steps).
    line = [line for line in cloud.services.log('conductor-0').splitlines()
            if 'Migration %s: live of asked' % queued['id'] in line][0]
    request_id = re.search(r'req-[0-9a-f-]{36}', line).group(0)
    agent_lines = [line for line in cloud.services.log(AGENT_GROUP).splitlines()
                   if 'Migration %s of asked: job started' % queued['id'] in line]
    assert agent_lines and request_id in agent_lines[0], (line, agent_lines)


def test_killed_agent_is_marked_down_in_time(cloud):
    """Last in the module: it kills h3's agent."""
    assert cloud.row('hosts', name='h3')['state'] == 'up'
    cloud.services.kill('agent-h3')
    killed = time.monotonic()
    while cloud.row('hosts', name='h3')['state'] != 'down':
        assert time.monotonic() - killed < 4 * HEARTBEAT_TIMEOUT, 'h3 never marked down'
        time.sleep(0.05)
    elapsed = time.monotonic() - killed
    # Its last heartbeat came at most one interval before the kill; the conductor looks
    # every dispatch interval. The slack is for a busy two-core CI machine.
    assert HEARTBEAT_TIMEOUT - HEARTBEAT_INTERVAL - 0.5 <= elapsed
    assert elapsed <= HEARTBEAT_TIMEOUT + DISPATCH_INTERVAL + 1.5, elapsed
    assert cloud.row('hosts', name='h1')['state'] == 'up'


def test_a_service_with_a_bad_option_exits_naming_file_and_option(tmp_path):
    # No broker is reached: the value is refused as the process starts, and the
    # state directory (and its database) is never made.
    state = tmp_path / 'state'
    path = tmp_path / 'vmmig.conf'
    path.write_text('[DEFAULT]\ntransport_url = %s\nstate_path = %s\n'
                    '[conductor]\nheartbeat_timeout = -5\n' % (vfix.RABBIT_URL, state))
    conductor = os.path.join(os.path.dirname(sys.executable), 'vmmig-conductor')
    proc = subprocess.run([conductor, '--config-file', str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert ("vmmig-conductor: Invalid value '-5' for [conductor] heartbeat_timeout in %s: "
            "Should be greater than or equal to 0.1" % path) in proc.stderr
    assert not state.exists()
