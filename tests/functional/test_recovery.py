"""Services killed with SIGKILL mid-work, and two conductors sharing one queue.

The conductor and agents run as processes over RabbitMQ with PostgreSQL; the test
talks to them through the conductor's RPC API. After every crash and restart each
migration ends in a terminal state (or stays held), and each VM is defined on
exactly one host, which is the one its record names.
"""

import collections
from concurrent import futures
import re
import time

import fixtures
from oslo_config import fixture as config_fixture
import pytest

from tests import fixtures as vfix
from vmmig.conductor import rpcapi
from vmmig import conf
from vmmig import config
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig import rpc

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

CONF = conf.CONF
TERMINAL = ('completed', 'failed', 'cancelled', 'error')
HOST = {'vcpus': 64, 'memory_mb': 262144, 'disk_gb': 2000, 'shared_storage': 'nfs'}


class Client(fixtures.Fixture):
    """The conductor's RPC API and the database, from this process, as the services see
    them (their configuration file)."""

    def __init__(self, services):
        self.services = services

    def _setUp(self):
        config.set_defaults()
        self.useFixture(config_fixture.Config(CONF))
        CONF(['--config-file', self.services.config_file], project='vmmig',
             default_config_files=[])
        self.addCleanup(db.dispose)
        self.addCleanup(rpc.cleanup)
        self.api = rpcapi.ConductorAPI(timeout=60, context=vcontext.new('tester', ['admin']))


@pytest.fixture
def database():
    fixture = vfix.DatabaseFixture('postgresql')
    fixture.setUp()
    yield fixture.url
    fixture.cleanUp()


def _start(database_url, cluster, conductors=1, **extra_conf):
    services = vfix.ServiceProcesses(sorted(cluster['hosts']), database_url, cluster=cluster,
                                     conductors=conductors, extra_conf=extra_conf)
    services.setUp()
    client = Client(services)
    client.setUp()
    # A host is up a moment before the report of its VMs is written.
    wait_for(lambda: len(db.instance_list()) == len(cluster['instances']), 30,
             'every VM to be reported')
    return services, client


@pytest.fixture
def cloud(database):
    started = []

    def start(cluster, conductors=1, **extra_conf):
        services, client = _start(database, cluster, conductors, **extra_conf)
        started.append((services, client))
        return services, client.api

    yield start
    for services, client in reversed(started):
        client.cleanUp()
        services.cleanUp()


# What the hosts hold ----------------------------------------------------------

def host_views(services):
    return vfix.sim_host_views(services.dir)


def places(services, name):
    return vfix.sim_places(services.dir, name)


def assert_each_vm_in_one_place(services, records):
    for record in records:
        where = places(services, record['instance'])
        if record['state'] == 'completed':
            expected = [record['dest_host']]
        elif record['state'] in ('failed', 'cancelled', 'held', 'queued'):
            expected = [record['source_host']]
        else:
            raise AssertionError('migration %s ended in %s: %s' % (
                record['id'], record['state'], record['reason']))
        assert where == expected, (record['id'], record['state'], record['reason'], where)
        assert db.instance_get(record['instance'])['host'] == expected[0]


def assert_vm(services, name, host, power_state, timeout=10):
    """``name`` is defined on ``host`` alone and is ``power_state`` there: in what the
    simulated host holds and in the instance's row (which the record's end wrote)."""
    assert places(services, name) == [host], (name, places(services, name))
    deadline = time.monotonic() + timeout
    while True:
        held = host_views(services)[host][name]['power_state']
        row = db.instance_get(name)
        seen = (row['host'], row['power_state'], held)
        if seen == (host, power_state, power_state) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == (host, power_state, power_state), (
        '%s: (row host, row power state, on %s) = %s, expected %s %s'
        % (name, host, seen, host, power_state))


def wait_all(records, wanted=TERMINAL, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        current = [db.migration_get(r['id']) for r in records]
        if all(r['state'] in wanted for r in current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError('still not %s: %s' % ('/'.join(wanted), [
                (r['id'], r['state']) for r in current if r['state'] not in wanted]))
        time.sleep(0.2)


def wait_state(migration, state, timeout=60):
    return wait_all([migration], (state,), timeout)[0]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %s s waiting for %s' % (timeout, what))
        time.sleep(0.1)


def starts(services, names):
    """How many times each migration was started, from every conductor's log."""
    counts = collections.Counter()
    for name in names:
        for match in re.finditer(r'Migration (\d+): \S+ of \S+ from \S+ to \S+ starts',
                                 services.log(name)):
            counts[int(match.group(1))] += 1
    return counts


# Crashes --------------------------------------------------------------------------

def _vm(host, memory_mb=512, **extra):
    return dict(dict(host=host, vcpus=1, memory_mb=memory_mb,
                     disks=[{'name': 'vda', 'size_gb': 10, 'location': 'shared'}],
                     workload={'dirty_rate_mbps': 10, 'wws_mb': 64}), **extra)


def test_conductor_killed_while_migrations_are_held_and_running(cloud):
    cluster = {'hosts': {'h1': HOST, 'h2': HOST}, 'instances': {
        'held-1': _vm('h1'), 'held-2': _vm('h2'),
        # 16 GiB over 10 Gbit/s: about 14 s of pre-copy on the real-time clock.
        'runner': _vm('h1', memory_mb=16384),
        # Ignores ACPI: the graceful shutdown takes its whole timeout.
        'stubborn': _vm('h2', disks=[{'name': 'vda', 'size_gb': 10, 'location': 'local'}],
                        workload={'dirty_rate_mbps': 10, 'wws_mb': 64,
                                  'ignores_acpi': True}),
    }}
    services, api = cloud(cluster, sim={'clock': 'scaled', 'time_scale': '1'})
    # Who holds them is the user of the request's context (ops), as the records keep it.
    ops = rpcapi.ConductorAPI(timeout=60, context=vcontext.new('ops', ['admin']))
    held = [ops.migrate_server(name, 'live', hold_reason='maintenance window')
            for name in ('held-1', 'held-2')]
    stubborn = api.migrate_server('stubborn', 'cold',
                                  options={'shutdown': True, 'shutdown_timeout': 20})
    wait_state(stubborn, 'preparing')
    runner = api.migrate_server('runner', 'live')
    wait_state(runner, 'running')
    time.sleep(1.0)
    assert db.migration_get(stubborn['id'])['state'] == 'preparing', \
        services.log('conductor-0')[-3000:] + services.log('agent-h2')[-3000:]

    services.kill('conductor-0')
    # Dead conductor, live agents: the pre-copy goes on, the shutdown finishes.
    time.sleep(2.0)
    services.start_conductor('conductor-0')

    runner, stubborn = wait_all([runner, stubborn])
    assert runner['state'] == 'completed', runner['reason']
    # Adopted mid-job: it runs on the destination, as it ran when the job started.
    assert runner['vm_location'] == 'h2'
    assert_vm(services, 'runner', 'h2', 'running')
    # The VM was shut down for a migration that could not go on: it runs again where
    # it was.
    assert stubborn['state'] == 'failed', stubborn['reason']
    assert host_views(services)['h2']['stubborn']['power_state'] == 'running'
    for record in held:
        record = db.migration_get(record['id'])
        assert (record['state'], record['hold_reason'], record['held_by']) == \
            ('held', 'maintenance window', 'ops')
    assert_each_vm_in_one_place(services, [runner, stubborn] + [
        db.migration_get(r['id']) for r in held])
    assert 'adopting it from conductor-0' in services.log('conductor-0')

    for record in held:
        api.migration_resume(record['id'])
    records = wait_all(held)
    assert [r['state'] for r in records] == ['completed', 'completed']
    assert_each_vm_in_one_place(services, records)
    assert_vm(services, 'held-1', 'h2', 'running')
    assert_vm(services, 'held-2', 'h1', 'running')


def test_adopted_live_migrations_end_as_the_vms_started(cloud):
    """The conductor is killed while two live migrations run, and adopts both when it
    starts again. The VM that ran when its job started runs on its destination; the one
    an operator had paused before stays paused there. Neither takes the power state of
    its source copy, which the completed job shut off."""
    cluster = {'hosts': {'h1': HOST, 'h2': HOST}, 'instances': {
        # 16 GiB over 10 Gbit/s: about 14 s of pre-copy on the real-time clock.
        'runner': _vm('h1', memory_mb=16384),
        'sleeper': _vm('h1', memory_mb=16384, power_state='paused')}}
    services, api = cloud(cluster, sim={'clock': 'scaled', 'time_scale': '1'})
    records = [api.migrate_server(name, 'live', host='h2') for name in ('runner', 'sleeper')]
    for record in records:
        wait_state(record, 'running')
    time.sleep(1.0)
    assert places(services, 'runner') == ['h1', 'h2+incoming']

    services.kill('conductor-0')
    time.sleep(1.0)
    services.start_conductor('conductor-0')

    runner, sleeper = wait_all(records)
    assert 'adopting it from conductor-0' in services.log('conductor-0')
    for record in (runner, sleeper):
        assert (record['state'], record['vm_location']) == ('completed', 'h2'), (
            record['id'], record['state'], record['reason'])
    assert_vm(services, 'runner', 'h2', 'running')
    assert_vm(services, 'sleeper', 'h2', 'paused')


def test_conductor_killed_again_and_again(cloud):
    """SIGKILL at whatever step each migration happens to be in, three times over."""
    hosts = {'h1': HOST, 'h2': HOST, 'h3': HOST}
    instances = {}
    for i in range(12):
        source = 'h%d' % (i % 3 + 1)
        kind = ('shared', 'local', 'volume')[i % 3]
        disk = {'name': 'vda', 'size_gb': 4, 'location': kind}
        if kind == 'volume':
            disk['volume'] = 'vol-%d' % i
        instances['vm-%02d' % i] = _vm(source, memory_mb=2048, disks=[disk],
                                       power_state='running' if i % 4 else 'shutoff')
    services, api = cloud({'hosts': hosts, 'instances': instances},
                          sim={'clock': 'scaled', 'time_scale': '2'},
                          conductor={'max_outbound_per_host': '4',
                                     'max_inbound_per_host': '4'})
    records = []
    for name, spec in sorted(instances.items()):
        dest = 'h%d' % (int(spec['host'][1]) % 3 + 1)
        mtype = 'live' if spec['power_state'] == 'running' else 'cold'
        records.append(api.migrate_server(name, mtype, host=dest))
    for delay in (0.7, 1.1, 1.3):
        time.sleep(delay)
        services.kill('conductor-0')
        services.start_conductor('conductor-0')
    records = wait_all(records, timeout=180)
    assert not [r for r in records if r['state'] not in ('completed', 'failed')], \
        [(r['id'], r['state'], r['reason']) for r in records]
    assert_each_vm_in_one_place(services, records)


def test_source_agent_killed_mid_migration(cloud):
    cluster = {'hosts': {'h1': HOST, 'h2': HOST}, 'instances': {
        'runner': _vm('h1', memory_mb=16384),
        'bystander': _vm('h2')}}
    services, api = cloud(cluster, sim={'clock': 'scaled', 'time_scale': '1'})
    runner = api.migrate_server('runner', 'live')
    wait_state(runner, 'running')
    time.sleep(1.0)
    assert places(services, 'runner') == ['h1', 'h2+incoming']

    services.kill('agent-h1')      # the pre-copy job dies with it
    services.start_agent('h1')     # the VM itself lives on: QEMU is not the agent
    services.wait_for_hosts(['h1'])

    runner = wait_all([runner])[0]
    assert runner['state'] == 'failed', runner['reason']
    assert runner['vm_location'] == 'h1'
    # The conductor ran throughout: the reason names what happened, to whom.
    assert 'the agent of h1 lost the job' in runner['reason'], runner['reason']
    assert 'conductor' not in runner['reason'], runner['reason']
    assert runner['reason'].endswith('rolled back, the VM stays on h1'), runner['reason']
    assert 'adopting' not in services.log('conductor-0')
    assert_vm(services, 'runner', 'h1', 'running')
    assert_each_vm_in_one_place(services, [runner])
    # The host works again: the same VM now goes across.
    again = api.migrate_server('bystander', 'live')
    assert wait_all([again])[0]['state'] == 'completed'


def test_destination_agent_killed_mid_migration(cloud):
    cluster = {'hosts': {'h1': HOST, 'h2': HOST}, 'instances': {
        'runner': _vm('h1', memory_mb=8192)}}
    services, api = cloud(cluster, sim={'clock': 'scaled', 'time_scale': '1'})
    runner = api.migrate_server('runner', 'live')
    wait_state(runner, 'running')
    time.sleep(1.0)
    services.kill('agent-h2')
    time.sleep(1.0)
    services.start_agent('h2')
    runner = wait_all([runner])[0]
    assert runner['state'] in ('completed', 'failed'), runner['reason']
    assert_each_vm_in_one_place(services, [runner])


# Two conductors -------------------------------------------------------------------

def test_two_conductors_execute_each_migration_once(cloud):
    hosts = {'h%d' % i: HOST for i in range(1, 5)}
    instances = {'vm-%03d' % i: _vm('h%d' % (i % 4 + 1), memory_mb=128)
                 for i in range(200)}
    # Two conductors of 16 workers with oslo.db's default pool (5 + 50 overflow) each
    # could take more than PostgreSQL's default 100 connections; and on a loaded
    # machine a 3 s silence is no proof that a conductor died.
    services, api = cloud({'hosts': hosts, 'instances': instances}, conductors=2,
                          conductor={'max_concurrent_migrations': '16',
                                     'max_outbound_per_host': '4',
                                     'max_inbound_per_host': '4',
                                     'heartbeat_timeout': '15'},
                          database={'max_pool_size': '5', 'max_overflow': '10'})

    def submit(name):
        source = int(instances[name]['host'][1])
        dest = 'h%d' % ((source + int(name[-1]) % 3) % 4 + 1)
        return api.migrate_server(name, 'live', host=dest, hold_reason='batch')

    # Held first, then released together: both conductors find a full queue.
    with futures.ThreadPoolExecutor(8) as pool:
        records = list(pool.map(submit, sorted(instances)))
        list(pool.map(lambda r: api.migration_resume(r['id']), records))
    records = wait_all(records, timeout=300)

    assert [(r['id'], r['state'], r['reason']) for r in records
            if r['state'] != 'completed'][:5] == []
    counts = starts(services, ['conductor-0', 'conductor-1'])
    assert sorted(counts) == sorted(r['id'] for r in records)
    assert set(counts.values()) == {1}, [m for m, n in counts.items() if n != 1]
    # Both took a share, and neither had to adopt the other's work.
    owners = collections.Counter(r['owner'] for r in records)
    assert set(owners) == {'conductor-0', 'conductor-1'}, owners
    for name in ('conductor-0', 'conductor-1'):
        assert 'adopting' not in services.log(name)
    assert_each_vm_in_one_place(services, records)
