"""Maintenance and action plans: a host emptied by ordinary migrations, each VM in its
power state; a plan shown before anything moves; bad requests change nothing."""

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig import exception
from vmmig import service

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


# Host a has the GPU the gpu VM holds; no other host has one of its kind.
GPU_ON_A = {'a': {'pci_devices': [{'address': '0000:3b:00.0', 'product': '10de:1db6'}]}}


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
    cloud = make_cloud(h.cluster(mixed_host(), hosts=('a', 'b', 'c'), **GPU_ON_A))
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
    cloud = make_cloud(h.cluster(mixed_host(), hosts=('a', 'b', 'c'), **GPU_ON_A))
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


def test_a_vm_no_host_can_take_is_listed_once_with_its_reason(make_cloud):
    cloud = make_cloud(h.cluster({'big': h.vm('a', 'shared', memory_mb=60000),
                                  'small': h.vm('a', 'shared')}, hosts=('a', 'b')))
    plan = cloud.api.host_maintenance_set('a', 'new DIMMs', dry_run=True)
    names = [a['instance'] for a in plan['actions']]
    assert sorted(names) == ['big', 'small'], names
    [big] = [a for a in plan['actions'] if a['instance'] == 'big']
    assert big['state'] == 'stays' and 'no host can take it' in big['reason']


def _refused(call, error, words, *args, **kwargs):
    before = h.stable_dump()
    with pytest.raises(error) as err:
        call(*args, **kwargs)
    assert words in str(err.value)
    assert h.stable_dump() == before


def test_bad_requests_name_the_problem_and_change_nothing(make_cloud):
    cloud = make_cloud(h.cluster({'x': h.vm('a')}, hosts=('a', 'b')))
    api = cloud.api
    _refused(api.host_maintenance_set, exception.HostNotFound, 'Host nowhere could not',
             'nowhere', 'reason')
    _refused(api.host_maintenance_set, exception.Invalid, 'needs a reason', 'a', '')
    _refused(api.host_maintenance_set, exception.InvalidOption, 'for cold_fallbak', 'a',
             'x', options={'cold_fallbak': True})
    _refused(api.host_maintenance_unset, exception.HostNotInMaintenance,
             'Host b is not in maintenance', 'b')
    _refused(api.host_maintenance_unset, exception.HostNotFound, 'nowhere', 'nowhere')
    _refused(api.plan_get, exception.PlanNotFound, 'Action plan 42 could not', 42)
    plan = wait_plan(api.host_maintenance_set('a', 'firmware'))
    assert plan['state'] == 'succeeded'
    _refused(api.host_maintenance_set, exception.HostInMaintenance,
             'Host a is already in maintenance: firmware', 'a', 'again')
    _refused(api.host_maintenance_set, exception.HostInMaintenance,
             'already in maintenance', 'a', 'again', dry_run=True)
    _refused(api.plan_execute, exception.PlanInvalidState,
             'Cannot execute action plan %s while it is succeeded' % plan['id'], plan['id'])
    _refused(api.plan_abort, exception.PlanInvalidState,
             'Cannot abort action plan %s while it is succeeded' % plan['id'], plan['id'])
    assert api.host_maintenance_unset('a')['maintenance'] is False
    assert db.host_get('a')['maintenance'] is False
    assert db.instance_get('x')['host'] == 'b'


def test_a_recommended_plan_is_executed_once(make_cloud):
    cloud = make_cloud(h.cluster({'x': h.vm('a'), 'y': h.vm('a', power_state='shutoff')},
                                 hosts=('a', 'b')), **{'ha.prefailure_action': 'notify'})
    answer = cloud.api.host_health('a', 'failing', 'ECC errors on DIMM 3')
    plan = answer['plan']
    assert answer['action'] == 'notify' and plan['state'] == 'recommended'
    assert plan['strategy'] == 'prefailure'
    assert plan['reason'] == 'pre-failure: ECC errors on DIMM 3'
    assert db.migration_list() == [] and not db.host_get('a')['maintenance']
    # The same signal again does not make a second plan.
    assert cloud.api.host_health('a', 'failing', 'ECC')['plan']['id'] == plan['id']
    assert cloud.api.plan_execute(plan['id'], dry_run=True)['state'] == 'recommended'
    assert cloud.api.plan_execute(plan['id'])['state'] == 'ongoing'
    _refused(cloud.api.plan_execute, exception.PlanInvalidState,
             'Cannot execute action plan %s while it is ongoing' % plan['id'], plan['id'])
    plan = wait_plan(plan)
    assert plan['state'] == 'succeeded'
    for name, power in (('x', 'running'), ('y', 'shutoff')):
        assert db.instance_get(name)['host'] == 'b'
        assert db.instance_get(name)['power_state'] == power
    assert len(db.migration_list()) == 2


def test_a_failing_host_is_drained_by_itself(make_cloud):
    cloud = make_cloud(h.cluster({'x': h.vm('a'), 'y': h.vm('a', 'local')},
                                 hosts=('a', 'b')), **{'ha.health_monitor': 'sim'})
    h.write_health(cloud, 'a', 'failing', 'SMART: disk 2 reallocated sectors')
    h.wait_for(lambda: plans_db.plan_list(host='a'), 30, 'a plan for a')
    [plan] = plans_db.plan_list(host='a')
    assert plan['strategy'] == 'prefailure'
    assert plan['reason'] == 'pre-failure: SMART: disk 2 reallocated sectors'
    host = db.host_get('a')
    assert host['maintenance'] and host['maintenance_reason'] == plan['reason']
    plan = wait_plan(plan)
    assert plan['state'] == 'succeeded'
    for name in ('x', 'y'):
        assert db.instance_get(name)['host'] == 'b'
        assert db.instance_get(name)['power_state'] == 'running'
    # The agent keeps saying so: no second plan.
    assert len(plans_db.plan_list(host='a')) == 1


def test_health_of_an_unknown_host_or_status_is_refused(make_cloud):
    cloud = make_cloud(h.cluster({'x': h.vm('a')}, hosts=('a', 'b')))
    _refused(cloud.api.host_health, exception.HostNotFound, 'nowhere', 'nowhere',
             'failing')
    _refused(cloud.api.host_health, exception.InvalidArgument,
             'Invalid argument status of host_health', 'a', 'dying')


@pytest.mark.parametrize('asked', [False, True], ids=['not-asked', 'asked'])
def test_a_failed_live_move_goes_cold_only_when_asked(make_cloud, asked):
    broken = {'dirty_rate_mbps': 10, 'wws_mb': 64, 'link_loss_at': 0.1}
    if True:
        cloud = make_cloud(h.cluster({'x': h.vm('a', workload=broken)}, hosts=('a', 'b')))
        options = {'cold_fallback': True} if asked else {}
        plan = wait_plan(cloud.api.host_maintenance_set('a', 'swap', options=options))
        migrations = db.migration_list()
        assert migrations[0]['migration_type'] == 'live'
        assert migrations[0]['state'] == 'failed'
        record = db.instance_get('x')
        if asked:
            assert plan['state'] == 'succeeded', plan
            # Tried once more live, then cold.
            assert [m['migration_type'] for m in migrations] == ['live', 'live', 'cold']
            assert migrations[2]['options'] == {'shutdown': True}
            # Shut down to move: it runs again on the destination.
            assert (record['host'], record['power_state']) == ('b', 'running')
            assert plan['actions'][1]['fallback_of'] == plan['actions'][0]['id']
            assert plan['actions'][2]['fallback_of'] == plan['actions'][1]['id']
        else:
            assert plan['state'] == 'failed' and len(migrations) == 2
            assert 'x stays: migration %s failed' % migrations[1]['id'] in plan['result']
            assert (record['host'], record['power_state']) == ('a', 'running')


def _twenty():
    vms = {}
    for i in range(20):
        kind = ('shared', 'local', 'volume')[i % 3]
        power = 'shutoff' if i % 4 == 3 else 'running'
        vms['vm%02d' % i] = h.vm('a', kind, power_state=power, memory_mb=512)
    return vms


def _moved_once(plan, vms):
    assert plan['state'] == 'succeeded', plan['result']
    completed = [m for m in db.migration_list() if m['state'] == 'completed']
    assert sorted(m['instance'] for m in completed) == sorted(vms)
    for name, spec in vms.items():
        record = db.instance_get(name)
        assert record['host'] in ('b', 'c') and record['power_state'] == spec['power_state']


def test_a_conductor_restarted_mid_drain_finishes_the_plan(make_cloud):
    vms = _twenty()
    cloud = make_cloud(h.cluster(vms, hosts=('a', 'b', 'c')))
    plan = cloud.api.host_maintenance_set('a', 'kernel update')
    h.wait_for(lambda: 2 <= len(db.migration_list(state='completed')) < 20, 60,
               'a few VMs to move')
    # Another conductor takes over; the agents stay (the functional test kills one
    # with SIGKILL mid-migration: tests/functional/test_plans.py).
    cloud.services.conductor.stop()
    cloud.services.conductor = service.ConductorService(name='another-conductor')
    cloud.services.conductor.start()
    _moved_once(wait_plan(plan), vms)


def test_a_migration_recorded_but_not_noted_in_the_plan_is_linked(make_cloud, monkeypatch):
    """A conductor killed between recording an action's migration and noting it in the
    plan: the next pass finds the migration by its action and does not record another."""
    vms = {'x': h.vm('a'), 'y': h.vm('a', 'local', power_state='shutoff')}
    cloud = make_cloud(h.cluster(vms, hosts=('a', 'b')))
    real = plans_db.action_transition
    killed = []

    def dies_once(action_id, expected, target, **values):
        if target == 'recorded' and not killed:
            killed.append(action_id)
            raise RuntimeError('conductor killed')
        return real(action_id, expected, target, **values)
    monkeypatch.setattr(plans_db, 'action_transition', dies_once)
    plan = _moved_once_plan = wait_plan(cloud.api.host_maintenance_set('a', 'x'))
    assert killed
    _moved_once(_moved_once_plan, vms)
    action = next(a for a in plan['actions'] if a['id'] == killed[0])
    assert action['state'] == 'moved'
    assert db.migration_get(action['migration_id'])['action_id'] == killed[0]
    assert len(db.migration_list()) == 2


@pytest.mark.parametrize('moves', ['same_release', 'to_newer_release'])
def test_a_rolling_os_upgrade_is_a_drain_to_hosts_of_the_newer_release(make_cloud, moves):
    """b runs the newer release, c the older one like a: with to_newer_release the
    drain of a may use b; without it only c, the same release."""
    releases = {'a': {'os_version': 'Ubuntu 22.04.4'}, 'b': {'os_version': 'Ubuntu 24.04.1'},
                'c': {'os_version': 'Ubuntu 22.04.5', 'memory_mb': 4096}}
    cloud = make_cloud(h.cluster({'web': h.vm('a', 'shared', memory_mb=2048),
                                  'db': h.vm('a', 'shared', memory_mb=2048)},
                                 hosts=('a', 'b', 'c'), **releases),
                       **{'scheduler.os_release_moves': moves})
    plan = wait_plan(cloud.api.host_maintenance_set('a', 'upgrade to 24.04'))
    if moves == 'to_newer_release':
        # c has room for one VM only: the newer release takes the rest (or all).
        assert plan['state'] == 'succeeded', plan['result']
        places = cloud.hosts_of('web') + cloud.hosts_of('db')
        assert set(places) <= {'b', 'c'} and 'b' in places, places
    else:
        assert plan['state'] == 'partial', plan['result']
        assert sorted(cloud.hosts_of('web') + cloud.hosts_of('db')) == ['a', 'c']
        assert 'release' in plan['result'] or 'OS' in plan['result'], plan['result']
    for name in ('web', 'db'):
        assert db.instance_get(name)['power_state'] == 'running'
