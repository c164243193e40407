"""The agents' reports on a topic of their own, and what each conductor topic serves.

The broker can let a user publish on a topic or not, whatever method a message
names (tools/rabbitmq-users.sh): so the report topic's endpoint has the report
methods only, and, once [conductor] reports_on_operator_topic is off, the operators'
topic has none of the agents-only ones. Neither offers the manager's methods that
are no endpoint (start, stop, record_migration).
"""

import types

import oslo_messaging as messaging
from oslo_messaging.rpc.dispatcher import NoSuchMethod
import pytest

from tests.unit.semantics import helpers
from tests.unit.semantics import test_policy
from vmmig.conductor import endpoints
from vmmig.conductor import manager as conductor_manager
from vmmig.conductor import rpcapi
from vmmig import conf
from vmmig.db import api as db
from vmmig import exception
from vmmig import rpc

CONF = conf.CONF
AGENTS_ONLY = {'heartbeat', 'agent_started', 'migration_progress'}
NOT_ENDPOINTS = {'start', 'stop', 'record_migration', 'build_plan', 'init_plans'}


def _offers(endpoint, names):
    return {name for name in names if hasattr(endpoint, name)}


def test_each_topic_offers_its_methods_and_no_other(make_cloud):
    cloud = make_cloud(helpers.cluster({}), **{'conductor.reports_on_operator_topic': False})
    manager = cloud.services.conductor.manager
    every = test_policy.READS | test_policy.REPORTS | test_policy.CHANGES
    report = endpoints.report_endpoint(manager)
    operator = endpoints.operator_endpoint(manager)
    assert _offers(report, every | NOT_ENDPOINTS) == test_policy.REPORTS
    # host_health: an outside monitor says it on the operators' topic.
    assert _offers(operator, every | NOT_ENDPOINTS) == every - AGENTS_ONLY
    assert report.target.version == operator.target.version == manager.target.version


def test_old_agents_reports_on_the_operators_topic_while_allowed(make_cloud):
    cloud = make_cloud(helpers.cluster({}))
    operator = endpoints.operator_endpoint(cloud.services.conductor.manager)
    assert AGENTS_ONLY <= _offers(operator, AGENTS_ONLY)
    assert not _offers(operator, NOT_ENDPOINTS)


def _report(topic, **kwargs):
    client = rpc.get_client(topic, '1.6')
    return client.prepare(timeout=10).call(helpers.as_role('service')(), 'heartbeat',
                                           host='a', reported_at=1.0, **kwargs)


def _refused_as_unknown(call):
    """The dispatcher's NoSuchMethod, as the in-process transport gives it back (the
    class itself) or as a broker's does (a RemoteError naming it)."""
    with pytest.raises((messaging.RemoteError, NoSuchMethod)) as e:
        call()
    assert getattr(e.value, 'exc_type', type(e.value).__name__) == 'NoSuchMethod'


def test_reports_reach_the_conductor_only_on_the_report_topic(make_cloud):
    make_cloud(helpers.cluster({}), **{'conductor.reports_on_operator_topic': False})
    assert _report(CONF.conductor.report_topic) is None
    _refused_as_unknown(lambda: _report(CONF.conductor.topic))
    # And an operator's request on the report topic.
    client = rpc.get_client(CONF.conductor.report_topic, '1.6')
    _refused_as_unknown(lambda: client.prepare(timeout=10).call(
        helpers.as_role('admin')(), 'host_list'))


@pytest.mark.parametrize('cap,topic', [(None, 'report_topic'), ('1.5', 'topic')])
def test_an_agent_capped_below_1_6_reports_on_the_operators_topic(make_cloud, cap, topic):
    overrides = {'upgrade_levels.conductor': cap} if cap else {}
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}), **overrides)
    api = rpcapi.ConductorAPI()
    assert api.reports.target.topic == getattr(CONF.conductor, topic)
    # The agents registered (agent_started is a call, answered): their hosts are up.
    assert {h['name']: h['state'] for h in db.host_list()} == {'a': 'up', 'b': 'up'}


def _incoming(exchange, method='host_list'):
    raw = types.SimpleNamespace(delivery_info={'exchange': exchange, 'routing_key': 'x'})
    message = dict(method=method, args={}, version='1.0')
    message = type('Message', (dict,), {})(message)
    message._raw_message = raw
    return types.SimpleNamespace(message=message, ctxt=helpers.as_role('admin')().to_dict(),
                                 client_timeout=None)


def test_a_message_the_default_exchange_delivered_is_refused(make_cloud):
    cloud = make_cloud(helpers.cluster({}))
    dispatcher = rpc.RoutedDispatcher(
        [endpoints.operator_endpoint(cloud.services.conductor.manager)], rpc.SERIALIZER,
        [CONF.control_exchange, CONF.conductor.topic + '_fanout'])
    with pytest.raises(exception.RouteRefused, match="exchange \\(default\\)"):
        dispatcher.dispatch(_incoming(''))
    with pytest.raises(exception.RouteRefused, match='amq.topic'):
        dispatcher.dispatch(_incoming('amq.topic'))
    hosts = dispatcher.dispatch(_incoming(CONF.control_exchange))
    assert sorted(h['name'] for h in hosts) == ['a', 'b']


def test_the_manager_is_no_endpoint_of_its_own():
    """Only what endpoints.declared finds is served: each has a policy rule."""
    declared = endpoints.declared(conductor_manager.ConductorManager.__new__(
        conductor_manager.ConductorManager))
    assert declared == test_policy.READS | test_policy.REPORTS | test_policy.CHANGES
