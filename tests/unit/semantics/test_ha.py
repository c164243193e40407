"""The HA monitor in-process: a dead simulated host fenced, its VMs rebuilt by priority."""

import json
import os

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig import exception
from vmmig.fencing import redfish
from vmmig.plans import model as plan_model
from vmmig.strategies import evacuate as recovery


def _vm(host, priority=None, enabled=None, memory_mb=1024, **kw):
    ha = {}
    if priority is not None:
        ha['priority'] = priority
    if enabled is not None:
        ha['enabled'] = enabled
    return h.vm(host, memory_mb=memory_mb, ha=ha, **kw) if ha else h.vm(host, **kw)


def _spec(name, **kw):
    return dict(_vm('a', **kw), name=name, vcpus=1, memory_mb=kw.get('memory_mb', 1024))


# The policy, a pure function ---------------------------------------------------------

def test_order_is_by_priority_then_name_and_disabled_vms_stay():
    plan = recovery.order_evacuations(
        [_spec('low'), _spec('high', priority=10), _spec('off', enabled=False),
         _spec('also-high', priority=10), _spec('mid', priority=5)], hosts=[])
    assert plan == [('also-high', 10, None, None), ('high', 10, None, None),
                    ('mid', 5, None, None), ('low', 0, None, None),
                    ('off', 0, None, recovery.DISABLED)]


def test_reserved_host_counts_room_in_priority_order():
    spare = {'name': 'spare', 'state': 'up', 'maintenance': False,
             'facts': {'vcpus': 4, 'memory_mb': 3000, 'vcpus_used': 0,
                       'memory_mb_used': 0}}
    down_spare = dict(spare, name='spare-2', state='down')
    plan = recovery.order_evacuations(
        [_spec('first', priority=3, memory_mb=2048), _spec('second', priority=2),
         _spec('third', priority=1, memory_mb=512)], [spare, down_spare],
        method='reserved_host', reserved_hosts=['spare-2', 'spare'])
    assert [(n, d) for n, _p, d, _r in plan] == [
        ('first', 'spare'), ('second', None), ('third', 'spare')]
    assert 'no reserved host (spare-2, spare) is up with room' in plan[1][3]


def test_bad_ha_metadata_is_named():
    plan = recovery.order_evacuations([_spec('x', priority='urgent')], [])
    assert plan == [('x', 0, None, "the HA priority of x must be an integer, not 'urgent'")]


# The BMC file ------------------------------------------------------------------------

@pytest.mark.parametrize('content,message', [
    ({'h1': {'address': 'http://bmc', 'system_id': '/s/1', 'passwd': 'x'}},
     "host h1: unknown key 'passwd'"),
    ({'h1': {'address': 'http://bmc'}}, 'host h1: system_id is missing'),
    ({'h1': {'address': 'http://bmc', 'system_id': '/s/1', 'verify': 'no'}},
     "host h1: verify must be a bool, not 'no'"),
    ([], 'it must map each host name to its BMC'),
])
def test_bmc_file_errors_name_the_host_and_key(tmp_path, content, message):
    path = tmp_path / 'bmc.json'
    path.write_text(json.dumps(content))
    with pytest.raises(exception.InvalidOption) as e:
        redfish.load_bmc_file(str(path))
    assert message in e.value.message and '[ha] bmc_file' in e.value.message


def test_bmc_file_in_yaml(tmp_path):
    path = tmp_path / 'bmc.yaml'
    path.write_text('h1:\n  address: http://bmc:8000\n  system_id: /redfish/v1/Systems/h1\n'
                    '  username: admin\n  password: secret\n')
    assert redfish.load_bmc_file(str(path)) == {'h1': {
        'address': 'http://bmc:8000', 'system_id': '/redfish/v1/Systems/h1',
        'username': 'admin', 'password': 'secret', 'verify': True}}


# The monitor, end to end in-process ----------------------------------------------------

def _cluster():
    return h.cluster({
        'gold': _vm('a', priority=100),
        'silver': _vm('a', priority=50, power_state='shutoff'),
        'bronze': _vm('a', location='volume'),
        'scratch': _vm('a', location='local'),
        'pet': _vm('a', enabled=False),
        'other': _vm('b'),
    }, hosts=('a', 'b', 'c'))


def _recovery_of(host, states=('succeeded', 'partial', 'failed')):
    """The HA monitor's plan for ``host``, once it has ended."""
    found = [p for p in plans_db.plan_list(host=host, strategy='evacuate', with_actions=True)
             if p['state'] in states]
    return found[-1] if found else None


def test_monitor_fences_and_rebuilds_by_priority(make_cloud):
    cloud = make_cloud(_cluster(), **{'drivers.fencing': 'sim', 'ha.monitor_interval': 0.05})
    cloud.stop_agent('a')
    h.wait_for(lambda: _recovery_of('a'), 30, 'the recovery of a to end')
    plan = _recovery_of('a')
    assert plan['state'] == 'partial', plan
    assert plan['requested_by'] == 'ha-monitor'
    assert plan['reason'].startswith('host a is down'), plan
    assert 'fenced: simulated power-off of a' in plan['reason'], plan
    order = [a['instance'] for a in plan['actions']]
    assert order[:3] == ['gold', 'silver', 'bronze'], order
    actions = {a['instance']: a for a in plan['actions']}
    for name, power in (('gold', 'running'), ('silver', 'shutoff'), ('bronze', 'running')):
        assert actions[name]['state'] == 'moved', actions[name]
        where = actions[name]['dest_host']
        assert where in ('b', 'c')
        # The record and the host agree: where it is and its power state.
        assert cloud.on(where, name)['power_state'] == power
        row = db.instance_get(name)
        assert (row['host'], row['power_state']) == (where, power)
        migration = db.migration_get(actions[name]['migration_id'])
        assert migration['migration_type'] == 'evacuate'
        assert migration['action_id'] == actions[name]['id']
    assert actions['pet']['state'] == 'stays'
    assert actions['pet']['reason'] == recovery.DISABLED
    assert actions['pet']['migration_id'] is None
    assert actions['scratch']['state'] == 'stays' and actions['scratch']['migration_id'] is None
    assert 'local' in actions['scratch']['reason'], actions['scratch']
    assert 'scratch stays' in plan['result'] and '3 of 5 VMs moved' in plan['result'], plan
    # Out of placement until an operator says otherwise.
    host = db.host_get('a')
    assert host['maintenance'] and 'fenced' in host['maintenance_reason'], host
    # The migrations ran by priority: gold was recorded first.
    assert actions['gold']['migration_id'] < actions['silver']['migration_id'] < \
        actions['bronze']['migration_id']


def test_monitor_only_reports_with_a_driver_that_does_not_power_off(make_cloud):
    cloud = make_cloud(_cluster(), **{'drivers.fencing': 'heartbeat',
                                      'ha.monitor_interval': 0.05})
    cloud.stop_agent('a')
    h.wait_for(lambda: _recovery_of('a'), 30, 'the report of a')
    plan = _recovery_of('a')
    assert plan['state'] == 'failed' and 'does not power hosts off' in plan['reason'], plan
    assert {a['state'] for a in plan['actions']} == {'stays'}
    assert 'does not power hosts off' in \
        {a['instance']: a for a in plan['actions']}['gold']['reason']
    assert not db.migration_list()
    assert db.instance_get('gold')['host'] == 'a'
    assert not db.host_get('a')['maintenance']
    assert os.path.exists(os.path.join(cloud.state_path, 'sim', 'hosts', 'a.json'))
    # One plan for the failure, not one at every pass of the monitor.
    cloud.services.conductor.manager.monitor.tick()
    assert len(plans_db.plan_list(host='a', strategy='evacuate')) == 1


def test_reserved_hosts_take_only_the_vms_of_failed_hosts(make_cloud):
    cloud = make_cloud(h.cluster({
        'gold': _vm('a', priority=10), 'silver': _vm('a'), 'mover': _vm('b')},
        hosts=('a', 'b', 'spare')),
        **{'drivers.fencing': 'sim', 'ha.monitor_interval': 0.05,
           'ha.recovery_method': 'reserved_host', 'ha.reserved_hosts': ['spare']})
    # An ordinary migration is not placed on the spare ...
    refused = {v['host']: v for v in cloud.api.host_eligible('mover', 'live')}
    assert not refused['spare']['eligible']
    assert any('reserved for the VMs of failed hosts' in r
               for r in refused['spare']['reasons']), refused['spare']
    # ... the recovery of a dead host is.
    cloud.stop_agent('a')
    h.wait_for(lambda: _recovery_of('a'), 30, 'the recovery of a to end')
    plan = _recovery_of('a')
    assert plan['state'] == 'succeeded', plan
    assert plan['options']['recovery_method'] == 'reserved_host'
    assert [(a['instance'], a['dest_host'], a['state']) for a in plan['actions']] == [
        ('gold', 'spare', 'moved'), ('silver', 'spare', 'moved')]
    for name in ('gold', 'silver'):
        row = db.instance_get(name)
        assert (row['host'], row['power_state']) == ('spare', 'running')
        assert cloud.on('spare', name)['power_state'] == 'running'


def _fenced_plan(host):
    return {'host': host, 'state': 'ongoing', 'reason': 'host %s is down; fenced' % host,
            'options': {}, 'requested_by': 'ha-monitor', 'estimate_s': 0.0}


def test_a_second_monitor_recovering_the_same_failure_evacuates_nothing_twice(make_cloud):
    """Two monitors that both believe they are active (a lock that expired under a
    paused process) record one plan for one failure, and each VM has one evacuation."""
    cloud = make_cloud(_cluster(), **{'drivers.fencing': 'sim', 'ha.enabled': False})
    cloud.stop_agent('a')
    h.wait_for(lambda: db.host_get('a')['state'] == 'down', 30, 'a to be marked down')
    actions, _estimate = recovery.Evacuate().build(plan_model.ClusterModel.load('a'), 'a')
    first = plans_db.recovery_plan_create(_fenced_plan('a'), actions, 'fenced')
    second = plans_db.recovery_plan_create(_fenced_plan('a'), actions, 'fenced')
    assert first is not None and second is None
    assert [p['id'] for p in plans_db.plan_list(host='a', strategy='evacuate')] == \
        [first['id']]
    # Two conductors advancing the one plan at once: one migration per action.
    manager = cloud.services.conductor.manager
    for _ in range(2):
        try:
            manager.plans.advance_plan(plans_db.plan_get(first['id']))
        except exception.PlanStateConflict:
            pass  # the dispatcher's own pass ended it meanwhile
    manager.dispatcher.wake()
    h.wait_for(lambda: plans_db.plan_get(first['id'])['state'] != 'ongoing', 60,
               'the plan to end')
    plan = plans_db.plan_get(first['id'])
    moved = {a['instance']: a['migration_id'] for a in plan['actions'] if a['migration_id']}
    assert sorted(moved) == ['bronze', 'gold', 'silver'], plan
    for name in moved:
        evacuations = [m for m in db.migration_list(instance=name)
                       if m['migration_type'] == 'evacuate']
        assert [m['id'] for m in evacuations] == [moved[name]]
        row = db.instance_get(name)
        assert row['host'] in ('b', 'c') and row['power_state'] == \
            ('shutoff' if name == 'silver' else 'running')


def test_an_action_another_conductor_just_recorded_is_not_said_to_stay(make_cloud):
    """Two conductors advance one plan: the second read the plan before the first
    recorded an action's migration, so its prechecks refuse (the VM has a migration
    now). The action is that migration, not a VM that stays."""
    cloud = make_cloud(_cluster(), **{'drivers.fencing': 'sim', 'ha.enabled': False})
    cloud.stop_agent('a')
    h.wait_for(lambda: db.host_get('a')['state'] == 'down', 30, 'a to be marked down')
    actions, _estimate = recovery.Evacuate().build(plan_model.ClusterModel.load('a'), 'a')
    manager = cloud.services.conductor.manager
    manager.dispatcher.halt()  # only this test advances the plan
    plan = plans_db.recovery_plan_create(_fenced_plan('a'), actions, 'fenced')
    action = next(a for a in plan['actions'] if a['state'] == 'pending')
    # The first conductor records it...
    recorded = manager._record_action(action['instance'], action['migration_type'],
                                      action['dest_host'], action['options'], action['id'],
                                      None)
    # ...the second, with what it read before, tries too.
    manager.plans._start(plan, action, migrations={})
    after = next(a for a in plans_db.plan_get(plan['id'])['actions']
                 if a['id'] == action['id'])
    assert (after['state'], after['migration_id']) == ('recorded', recorded['id']), after
    assert [m['id'] for m in db.migration_list(instance=action['instance'])] == \
        [recorded['id']]


def test_plan_of_a_host_that_is_up_again_is_not_recorded(make_cloud):
    make_cloud(_cluster(), **{'drivers.fencing': 'sim', 'ha.enabled': False})
    assert plans_db.recovery_plan_create(_fenced_plan('a'), [], 'fenced') is None
    assert not plans_db.plan_list(host='a')
    assert not db.host_get('a')['maintenance']


def test_evacuate_plan_orders_by_priority_and_says_why_vms_stay():
    hosts = [{'name': n, 'state': 'up', 'maintenance': False, 'facts': {}, 'spec': {}}
             for n in ('a', 'b')]
    rows = [{'name': n, 'host': 'a', 'power_state': p, 'spec': dict(_spec(n, **kw))}
            for n, p, kw in (('low', 'running', {}), ('top', 'shutoff', {'priority': 9}),
                             ('off', 'running', {'enabled': False}),
                             ('disk', 'running', {'priority': 5, 'location': 'local'}))]
    actions, _estimate = recovery.Evacuate().build(plan_model.ClusterModel(hosts, rows), 'a')
    got = [(a['instance'], a['migration_type'], a['power_state'], a['state'])
           for a in actions]
    assert got == [('top', 'evacuate', 'shutoff', 'pending'),
                   ('low', 'evacuate', 'running', 'pending'),
                   ('disk', None, 'running', 'stays'), ('off', None, 'running', 'stays')]
    assert 'local' in actions[2]['reason'] and actions[3]['reason'] == recovery.DISABLED


def test_an_evacuation_whose_reserved_host_cannot_take_it_stays(make_cloud):
    """The planned destination of an evacuation is a reserved host: when it cannot
    take the VM any more, the VM stays, saying why; no other host is chosen."""
    cloud = make_cloud(_cluster(), **{'drivers.fencing': 'sim', 'ha.enabled': False})
    cloud.stop_agent('a')
    h.wait_for(lambda: db.host_get('a')['state'] == 'down', 30, 'a to be marked down')
    db.host_set_maintenance('c', True, 'the spare broke')
    plan = plans_db.recovery_plan_create(_fenced_plan('a'), [
        {'instance': 'gold', 'power_state': 'running', 'migration_type': 'evacuate',
         'dest_host': 'c', 'state': 'pending'}], 'fenced')
    cloud.services.conductor.manager.dispatcher.wake()
    h.wait_for(lambda: plans_db.plan_get(plan['id'])['state'] != 'ongoing', 30,
               'the plan to end')
    plan = plans_db.plan_get(plan['id'])
    [action] = plan['actions']
    assert action['state'] == 'stays' and 'c' in action['reason'], action
    assert plan['state'] == 'failed', plan
    assert not db.migration_list(instance='gold')
    row = db.instance_get('gold')
    assert (row['host'], row['power_state']) == ('a', 'running')
