"""vmmig's HA monitor and limits on a real Nova ([drivers] backend = nova).

The same Nova as tests/functional/test_nova_backend.py (the session's ``nova_cloud``),
with a vmmig-conductor of its own whose HA monitor is on, with the ``nova`` fencing:
a compute whose nova-compute dies and that an outside fencer (a BMC watchdog, here
the test) forces down in Nova has its servers evacuated by the monitor's recovery
plan, with no ``vmmig server evacuate``. The conductor also runs one migration at a
time ([conductor] max_concurrent_migrations = 1), so a second request waits in the
queue for the first.
"""

import time

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.functional import test_nova_backend as nb

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]


@pytest.fixture(scope='module')
def ha_on_nova(nova_cloud, keystone):
    assert nova_cloud.compute_hosts == list(nb.COMPUTES)
    database = vfix.DatabaseFixture('postgresql')
    database.setUp()
    services = vfix.ServiceProcesses([], database.url, extra_conf={
        'drivers': {'backend': 'nova', 'fencing': 'nova'},
        # Down in Nova for 1 s past its last discovery up is a failure to recover.
        'ha': {'enabled': 'true', 'monitor_interval': '0.2'},
        'conductor': {'heartbeat_timeout': '1', 'max_concurrent_migrations': '1',
                      'dispatch_interval': '0.2'},
        'nova': nb.nova_section(keystone),
    })
    engine = sa.create_engine(database.url)
    try:
        services.setUp()
        services.wait_for_hosts(list(nb.COMPUTES))
        yield nb.Cloud(nova_cloud, services, engine)
    finally:
        engine.dispose()
        services.cleanUp()
        database.cleanUp()


@pytest.fixture
def cloud(ha_on_nova):
    yield ha_on_nova
    ha_on_nova.delete_booted()
    # A test that failed half-way leaves no host out of vmmig's (and Nova's) placement.
    for row in nb._rows(ha_on_nova, 'SELECT name FROM hosts WHERE maintenance'):
        ha_on_nova.cli('host', 'maintenance', 'unset', row['name'])


def _recoveries(cloud, host):
    return [p for p in cloud.cli('plan', 'list', '--strategy', 'evacuate', '-f', 'json')
            if p['Host'] == host]


def test_monitor_evacuates_a_compute_killed_and_forced_down(cloud):
    running = cloud.boot('ha-1', 'nova-a')
    stopped = cloud.boot('ha-2', 'nova-a', stopped=True)
    cloud.boot('ha-peer', 'nova-b')
    assert _recoveries(cloud, 'nova-a') == []
    # Every server on the host is recovered, an earlier test's left-overs too.
    on_it = [r['name'] for r in nb._rows(cloud, "SELECT name FROM instances WHERE "
                                                "host = 'nova-a'")]
    assert {'ha-1', 'ha-2'} <= set(on_it), on_it
    cloud.nova.kill_compute('nova-a')
    # The outside fencer's word; vmmig is asked nothing.
    cloud.nova.force_down('nova-a')
    try:
        plan = cloud.wait(lambda: [p for p in _recoveries(cloud, 'nova-a')
                                   if p['State'] not in ('ongoing', 'pending')],
                          'the recovery plan of nova-a ends', 120)[0]
        assert plan['State'] == 'succeeded', plan
        assert 'forced down in Nova' in plan['Reason'], plan
        assert plan['Moved'] == '%d/%d' % (len(on_it), len(on_it)), (plan, on_it)
        shown = cloud.cli('plan', 'show', str(plan['ID']), '-f', 'json')
        assert 'ha-1' in str(shown) and 'ha-2' in str(shown), shown
        for name, server, power in (('ha-1', running, 'ACTIVE'),
                                    ('ha-2', stopped, 'SHUTOFF')):
            record = cloud.one('SELECT * FROM migrations WHERE instance = :n ORDER BY id '
                               'DESC LIMIT 1', n=name)
            assert record['migration_type'] == 'evacuate'
            assert record['state'] == 'completed', record['reason']
            assert record['action_id'] is not None
            assert cloud.nova_migrations(server)[0]['migration_type'] == 'evacuation'
            cloud.wait(lambda: cloud.admin.servers.get(server).status == power,
                       '%s %s in Nova' % (name, power), 60)
            host = cloud.agree(name, server)
            assert host in ('nova-b', 'nova-live'), host
        # Fenced: out of vmmig's placement until an operator says it is sound.
        row = cloud.one("SELECT maintenance, maintenance_reason FROM hosts "
                        "WHERE name = 'nova-a'")
        assert row['maintenance'] and 'fenced' in row['maintenance_reason'], row
        # And out of Nova's: its service disabled, as Masakari does.
        status, reason = nb._service(cloud, 'nova-a')
        assert status == 'disabled' and reason.startswith('vmmig maintenance: HA: fenced'), \
            reason
    finally:
        cloud.nova.recover_compute('nova-a')
    cloud.wait(lambda: cloud.one("SELECT state FROM hosts WHERE name = 'nova-a'") == {
        'state': 'up'}, 'nova-a up in vmmig again')
    cloud.cli('host', 'maintenance', 'unset', 'nova-a')
    assert nb._service(cloud, 'nova-a') == ('enabled', None)
    # Up again, one recovery for the one failure.
    assert len(_recoveries(cloud, 'nova-a')) == 1


def test_second_migration_waits_for_the_first_under_the_limit(cloud):
    slow = cloud.boot('lim-1', 'nova-live')
    quick = cloud.boot('lim-2', 'nova-a')
    first = cloud.cli('server', 'migrate', 'lim-1', '--live-migration', '--host', 'nova-b',
                      '-f', 'json')
    cloud.wait(lambda: cloud.migration(first['id'])['state'] == 'running', 'running', 30)
    second = cloud.cli('server', 'migrate', 'lim-2', '--live-migration', '--host', 'nova-b',
                       '-f', 'json')
    # Held in vmmig's queue while the first runs in Nova: Nova is asked nothing.
    waited = 0
    for _ in range(10):
        if cloud.migration(first['id'])['state'] != 'running':
            break
        assert cloud.migration(second['id'])['state'] == 'queued'
        assert cloud.nova_migrations(quick) == []
        waited += 1
        time.sleep(0.2)
    assert waited, 'the first ended before the second was seen waiting'
    done = cloud.wait_end(first['id'])
    assert done['state'] == 'completed', done['reason']
    record = cloud.wait_end(second['id'])
    assert record['state'] == 'completed', record['reason']
    assert record['started_at'] >= done['finished_at'], (record, done)
    assert cloud.agree('lim-1', slow, 'nova-b') == 'nova-b'
    assert cloud.agree('lim-2', quick, 'nova-b') == 'nova-b'
