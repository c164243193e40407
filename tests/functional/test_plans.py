"""A drain of 20 VMs whose conductor is killed with SIGKILL mid-plan: the plan goes on
after the restart and no VM is moved twice (processes over RabbitMQ, PostgreSQL)."""

import pytest

from tests.functional.test_recovery import HOST
from tests.functional.test_recovery import _vm
from tests.functional.test_recovery import cloud  # noqa: F401 (a fixture)
from tests.functional.test_recovery import database  # noqa: F401 (a fixture)
from tests.functional.test_recovery import places
from tests.functional.test_recovery import wait_for
from vmmig.db import api as db
from vmmig.db import plans as plans_db

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]


@pytest.mark.xfail(strict=True, reason=(
    'issue 15: the recovery of a live migration whose conductor was killed leaves the '
    'guest paused on its source (the record says so truthfully); remove this mark '
    'once that branch is merged'))
def test_conductor_killed_mid_drain(cloud):  # noqa: F811
    hosts = {'h1': HOST, 'h2': HOST, 'h3': HOST}
    instances = {}
    for i in range(20):
        kind = ('shared', 'local', 'volume')[i % 3]
        disk = {'name': 'vda', 'size_gb': 4, 'location': kind}
        if kind == 'volume':
            disk['volume'] = 'vol-%d' % i
        instances['vm-%02d' % i] = _vm('h1', memory_mb=2048, disks=[disk],
                                       power_state='shutoff' if i % 4 == 3 else 'running')
    services, api = cloud({'hosts': hosts, 'instances': instances},
                          sim={'clock': 'scaled', 'time_scale': '4'})
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
    # No VM moved twice; every VM in one place, where its record says, in its power state.
    assert len({m['instance'] for m in completed}) == len(completed)
    for name, spec in instances.items():
        record = db.instance_get(name)
        assert places(services, name) == [record['host']], name
        assert record['power_state'] == spec['power_state'], name
    assert plan['state'] == 'succeeded', (plan['result'], [
        (m['id'], m['instance'], m['state'], m['reason']) for m in migrations
        if m['state'] != 'completed'])
    assert sorted(m['instance'] for m in completed) == sorted(instances)
    # A move the kill interrupted was rolled back by the recovery, then tried again.
    assert all(m['state'] in ('completed', 'failed') for m in migrations)
    assert all(db.instance_get(n)['host'] in ('h2', 'h3') for n in instances)
    assert db.host_get('h1')['maintenance'] is True
