"""A drain of 20 VMs whose conductor is killed with SIGKILL mid-plan: the plan goes on
after the restart and no VM is moved twice (processes over RabbitMQ, PostgreSQL)."""

import pytest

from tests.functional.test_recovery import _vm
from tests.functional.test_recovery import cloud  # noqa: F401 (a fixture)
from tests.functional.test_recovery import database  # noqa: F401 (a fixture)
from tests.functional.test_recovery import HOST
from tests.functional.test_recovery import host_views
from tests.functional.test_recovery import places
from tests.functional.test_recovery import wait_for
from vmmig.db import api as db
from vmmig.db import plans as plans_db

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]


def _drain_cluster(count=20):
    instances = {}
    for i in range(count):
        kind = ('shared', 'local', 'volume')[i % 3]
        disk = {'name': 'vda', 'size_gb': 4, 'location': kind}
        if kind == 'volume':
            disk['volume'] = 'vol-%d' % i
        instances['vm-%02d' % i] = _vm('h1', memory_mb=2048, disks=[disk],
                                       power_state='shutoff' if i % 4 == 3 else 'running')
    return {'hosts': {'h1': HOST, 'h2': HOST, 'h3': HOST}, 'instances': instances}


def test_conductor_killed_mid_drain(cloud):  # noqa: F811
    cluster = _drain_cluster()
    instances = cluster['instances']
    services, api = cloud(cluster, sim={'clock': 'scaled', 'time_scale': '4'})
    plan = api.host_maintenance_set('h1', 'kernel update')
    wait_for(lambda: 2 <= len(db.migration_list(state='completed')) < 16, 120,
             'a few VMs to move')
    services.kill('conductor-0')
    services.start_conductor('conductor-0')
    wait_for(lambda: plans_db.plan_get(plan['id'])['state'] != 'ongoing', 300,
             'the plan to end')
    plan = plans_db.plan_get(plan['id'])
    migrations = db.migration_list()
    completed = [m for m in migrations if m['state'] == 'completed']
    assert plan['state'] == 'succeeded', (plan['result'], [
        (m['id'], m['instance'], m['state'], m['reason']) for m in migrations
        if m['state'] != 'completed'])
    # No VM moved twice; every VM in one place, where its record says, in the power
    # state it had before the drain.
    assert sorted(m['instance'] for m in completed) == sorted(instances)
    views = host_views(services)
    for name, spec in instances.items():
        record = db.instance_get(name)
        assert record['host'] in ('h2', 'h3'), name
        assert places(services, name) == [record['host']], name
        assert views[record['host']][name]['power_state'] == spec['power_state'], name
        assert record['power_state'] == spec['power_state'], name
    # A move the kill cut off before its job started was rolled back, then tried again.
    assert all(m['state'] in ('completed', 'failed') for m in migrations)
    assert db.host_get('h1')['maintenance'] is True
