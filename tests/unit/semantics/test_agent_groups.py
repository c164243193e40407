"""Hosts whose agents share one process and one RPC server (vmmig.agent.router)."""

from unittest import mock

import pytest

from tests.unit.semantics import helpers as h
from vmmig.agent import manager as agent_manager
from vmmig.agent import router
from vmmig.agent import rpcapi as agent_rpcapi
from vmmig.conductor import rpcapi as conductor_rpcapi
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig import exception

# What an agent's calls carry (vmmig.policies: the service role).
SERVICE = vcontext.new('vmmig-agent', ['service'])


def _cloud(make_cloud):
    cluster = h.cluster({'vm1': h.vm('a', 'shared'),
                         'vm2': h.vm('b', 'local', power_state='shutoff'),
                         'vm3': h.vm('c', 'shared')}, hosts=('a', 'b', 'c'))
    return make_cloud(cluster, agent_groups={'agents-ab': ['a', 'b']})


def test_hosts_of_a_group_are_addressed_through_its_server(make_cloud):
    cloud = _cloud(make_cloud)
    assert [db.host_agent(n) for n in ('a', 'b', 'c')] == ['agents-ab', 'agents-ab', 'c']
    # Within the group, out of it, and into it: each step reaches the right host.
    inside = cloud.run('vm1', 'live', host='b')
    assert inside['state'] == 'completed', inside['reason']
    assert cloud.hosts_of('vm1') == ['b']
    out = cloud.run('vm2', 'cold', host='c')
    assert out['state'] == 'completed', out['reason']
    assert cloud.hosts_of('vm2') == ['c']
    into = cloud.run('vm3', 'live', host='a')
    assert into['state'] == 'completed', into['reason']
    assert cloud.hosts_of('vm3') == ['a']


def test_a_host_that_registers_on_its_own_is_addressed_by_its_name(make_cloud):
    cloud = _cloud(make_cloud)
    manager = cloud.services.conductor.manager
    # b leaves the group's process (stopped there), then registers on its own, as an
    # agent of its own would (1.1: no agent argument).
    group = next(a for a in cloud.services.agents if getattr(a, 'name', None) == 'agents-ab')
    group.stop()
    cloud.services.agents.remove(group)
    manager.agent_started(SERVICE, 'b', db.host_get('b')['facts'], [], reported_at=0.0)
    assert db.host_agent('b') == 'b'
    assert manager.addresses.server_of('b') == 'b'
    assert manager.addresses.server_of('a') == 'agents-ab'


def test_a_routed_call_carries_the_host_and_version_1_2():
    api = agent_rpcapi.AgentAPI.__new__(agent_rpcapi.AgentAPI)
    api.client = mock.Mock()
    api.server_of = {'a': 'agents-ab', 'c': 'c'}.get
    api.get_instance('a', 'vm1')
    assert api.client.prepare.call_args.kwargs['server'] == 'agents-ab'
    assert api.client.prepare.call_args.kwargs['version'] == '1.2'
    assert api.client.prepare.return_value.call.call_args.kwargs == {
        'instance': 'vm1', 'host': 'a'}
    api.get_instance('c', 'vm3')
    assert api.client.prepare.call_args.kwargs['server'] == 'c'
    assert 'version' not in api.client.prepare.call_args.kwargs
    assert 'host' not in api.client.prepare.return_value.call.call_args.kwargs


def test_the_router_refuses_a_host_it_does_not_serve():
    served = agent_manager.AgentManager('a', driver=mock.Mock())
    endpoint = router.HostRouter('agents-ab', [served])
    assert endpoint.ping({}, host='a') == 'a'
    with pytest.raises(exception.HostNotServed) as e:
        endpoint.ping({}, host='z')
    assert 'agents-ab does not serve host z (it serves a)' in str(e.value)
    # Only the agents' public methods are offered to the dispatcher.
    assert not hasattr(endpoint, 'no_such_method')
    assert not hasattr(endpoint, '_jobs')


def test_a_stale_address_is_read_again_when_the_process_refuses(make_cloud):
    cloud = _cloud(make_cloud)
    manager = cloud.services.conductor.manager
    # As another conductor's memory would be after c moved to an agent of its own.
    manager.addresses.learn('c', 'agents-ab')
    assert manager.agents.ping('c') == 'c'
    assert manager.addresses.server_of('c') == 'c'


def _as_recorded(host):
    record = db.host_get(host)
    return (record['agent'], record['facts'],
            sorted(i['name'] for i in db.instance_list(host=host)))


def test_an_up_host_whose_agent_answers_is_not_taken_over(make_cloud):
    cloud = _cloud(make_cloud)
    manager = cloud.services.conductor.manager
    before = _as_recorded('a')
    assert before[2] == ['vm1']
    with pytest.raises(exception.HostServedElsewhere) as e:
        # Over the bus, as any client of it could.
        conductor_rpcapi.ConductorAPI().agent_started('a', {'vcpus': 1}, [], 0.0,
                                                      agent='rogue')
    assert 'served by agent process agents-ab, which still answers' in str(e.value)
    assert _as_recorded('a') == before
    assert manager.addresses.server_of('a') == 'agents-ab'


def test_a_down_host_is_taken_over_and_it_is_logged(make_cloud, caplog):
    cloud = _cloud(make_cloud)
    manager = cloud.services.conductor.manager
    cloud.stop_agent('c')
    facts = db.host_get('c')['facts']
    manager.agent_started(SERVICE, 'c', facts, [], reported_at=0.0, agent='agents-new')
    assert db.host_agent('c') == 'agents-new'
    assert db.host_get('c')['state'] == 'up'
    assert 'agent process agents-new takes it over from c (the host was down)' in caplog.text
