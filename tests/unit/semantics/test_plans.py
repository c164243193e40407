"""Maintenance and action plans: a host emptied by ordinary migrations, each VM in its
power state; a plan shown before anything moves; bad requests change nothing."""

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig import exception

ENDED = ('succeeded', 'partial', 'failed', 'cancelled')


def wait_plan(plan, timeout=60):
    record = {}

    def ended():
        record.update(plans_db.plan_get(plan['id']))
        return record['state'] in ENDED
    h.wait_for(ended, timeout, lambda: 'plan %s to end (it is %s: %s)' % (
        plan['id'], record.get('state'), [(a['instance'], a['state'], a['reason'])
                                          for a in record.get('actions', [])]))
    return dict(record)


def mixed_host():
    return {
        'web': h.vm('a', 'shared', memory_mb=2048),
        'db': h.vm('a', 'local', memory_mb=2048),
        'vol': h.vm('a', 'volume', power_state='paused'),
        'old': h.vm('a', 'local', power_state='shutoff'),
        'cache': h.vm('a', 'local', power_state='suspended'),
        'gpu': h.vm('a', 'shared', pci_devices=['0000:3b:00.0']),
        'other': h.vm('b', 'shared'),
    }


def test_maintenance_drains_a_host_each_vm_in_its_power_state(make_cloud):
    cloud = make_cloud(h.cluster(mixed_host(), hosts=('a', 'b', 'c')))
    plan = cloud.api.host_maintenance_set('a', 'new DIMMs')
    # Out of placement at once, before anything moved.
    host = db.host_get('a')
    assert host['maintenance'] and host['maintenance_reason'] == 'new DIMMs'
    assert plan['state'] == 'ongoing' and plan['strategy'] == 'drain'
    plan = wait_plan(plan)
    assert plan['state'] == 'partial'
    assert 'gpu stays: it runs with passthrough device(s) 0000:3b:00.0' in plan['result']
    actions = {a['instance']: a for a in plan['actions']}
    assert actions['gpu']['state'] == 'stays' and actions['gpu']['migration_id'] is None
    expected = {'web': ('live', 'running'), 'db': ('live', 'running'),
                'vol': ('live', 'paused'), 'old': ('cold', 'shutoff'),
                'cache': ('cold', 'suspended')}
    views = cloud.host_states()
    for name, (mtype, power) in expected.items():
        action = actions[name]
        assert action['state'] == 'moved', action
        migration = db.migration_get(action['migration_id'])
        assert migration['migration_type'] == mtype and migration['state'] == 'completed'
        assert migration['action_id'] == action['id']
        record = db.instance_get(name)
        assert record['host'] in ('b', 'c') and record['host'] == migration['dest_host']
        assert record['power_state'] == power
        assert cloud.hosts_of(name) == [record['host']]
        assert views[record['host']][name]['power_state'] == power
    # One migration per VM, none for the one that stays.
    assert sorted(m['instance'] for m in db.migration_list()) == sorted(expected)
    assert cloud.hosts_of('gpu') == ['a']
    listed = {x['name']: x for x in cloud.api.host_list()}
    assert listed['a']['drain']['state'] == 'partial'
    assert (listed['a']['drain']['moved'], listed['a']['drain']['stays'],
            listed['a']['drain']['total']) == (5, 1, 6)


def test_a_dry_run_shows_the_plan_and_changes_nothing(make_cloud):
    cloud = make_cloud(h.cluster(mixed_host(), hosts=('a', 'b', 'c')))
    before = h.stable_dump()
    plan = cloud.api.host_maintenance_set('a', 'new DIMMs', dry_run=True)
    assert h.stable_dump() == before
    assert plan['id'] is None and plan['dry_run'] and plan['estimate_s'] > 0
    actions = plan['actions']
    assert [a['position'] for a in actions] == list(range(1, 7))
    kinds = {a['instance']: (a['migration_type'], a['state']) for a in actions}
    assert kinds == {'web': ('live', 'pending'), 'db': ('live', 'pending'),
                     'vol': ('live', 'pending'), 'old': ('cold', 'pending'),
                     'cache': ('cold', 'pending'), 'gpu': (None, 'stays')}
    for action in actions:
        if action['state'] == 'pending':
            assert action['dest_host'] in ('b', 'c') and action['estimate_s'] > 0
    # The one that stays comes last, with its reason.
    assert actions[-1]['instance'] == 'gpu' and 'passthrough' in actions[-1]['reason']
    # Longest first: db copies its local disk as well as its memory.
    assert actions[0]['instance'] == 'db'
