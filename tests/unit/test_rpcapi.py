"""Each RPC client agrees with the endpoint it calls: the version, the methods, the arguments.

Every public method of a client is called with placeholder arguments and a mocked
transport; what it would send (method name and keyword arguments) is compared with
the manager method of that name, which receives ``context`` plus those arguments.
"""

import inspect
from unittest import mock

import pytest

from tests import fixtures as vfix
from vmmig.agent import manager as agent_manager
from vmmig.agent import rpcapi as agent_rpcapi
from vmmig.conductor import manager as conductor_manager
from vmmig.conductor import rpcapi as conductor_rpcapi
from vmmig import exception

PAIRS = [
    pytest.param(conductor_rpcapi, conductor_rpcapi.ConductorAPI,
                 conductor_manager.ConductorManager, id='conductor'),
    pytest.param(agent_rpcapi, agent_rpcapi.AgentAPI, agent_manager.AgentManager,
                 id='agent'),
]


@pytest.fixture(autouse=True)
def conf():
    fixture = vfix.ConfFixture()
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


def _public_methods(cls):
    return sorted(name for name, member in inspect.getmembers(cls, inspect.isfunction)
                  if not name.startswith('_'))


def _sent(client_cls, method_name):
    """[(call|cast, method, kwargs)] that one client method puts on the wire."""
    api = client_cls.__new__(client_cls)
    api.client = mock.Mock()
    # The conductor's client sends the agents' reports through a client of their topic.
    api.reports = api.client
    api.server_of = lambda host: host
    cctxt = api.client.prepare.return_value
    method = getattr(api, method_name)
    args = {name: mock.sentinel for name, p in inspect.signature(method).parameters.items()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    method(**args)
    sent = []
    for kind in ('call', 'cast'):
        for call in getattr(cctxt, kind).call_args_list:
            _context, name = call.args
            sent.append((kind, name, call.kwargs))
    return sent


@pytest.mark.parametrize('module,client_cls,manager_cls', PAIRS)
def test_client_and_endpoint_share_the_version(module, client_cls, manager_cls):
    # Two literals, one in each module: a bump on one side only fails here.
    assert module.RPC_API_VERSION == manager_cls.target.version
    assert module.RPC_API_VERSION is not None
    # The version history in the client's docstring names the current version.
    assert '* %s - ' % module.RPC_API_VERSION in module.__doc__


def test_the_endpoint_keeps_its_own_version_literal():
    """The manager must not import the client's constant: then the test above would
    compare a value with itself and could never fail."""
    for manager_module in (conductor_manager, agent_manager):
        source = inspect.getsource(manager_module)
        assert 'RPC_API_VERSION' not in source, manager_module.__name__


def test_the_conductor_history_names_every_call():
    """Each call of the conductor's client is named in the version history that
    brought it (the agent's history says \"every method\" for 1.0)."""
    history = conductor_rpcapi.__doc__.split('Version history:', 1)[1]
    missing = [name for name in _public_methods(conductor_rpcapi.ConductorAPI)
               if name not in history]
    assert not missing, 'not in the version history: %s' % ', '.join(missing)


@pytest.mark.parametrize('module,client_cls,manager_cls', PAIRS)
def test_every_client_call_matches_an_endpoint_method(module, client_cls, manager_cls):
    methods = _public_methods(client_cls)
    assert methods
    for method_name in methods:
        sent = _sent(client_cls, method_name)
        assert len(sent) == 1, '%s.%s sends %s' % (client_cls.__name__, method_name, sent)
        _kind, name, kwargs = sent[0]
        endpoint = getattr(manager_cls, name, None)
        assert callable(endpoint), '%s has no endpoint method %s' % (manager_cls.__name__,
                                                                     name)
        params = inspect.signature(vfix.endpoint_function(endpoint)).parameters
        names = [n for n in params if n != 'self']
        assert names[0] == 'context', '%s.%s must take the context first' % (
            manager_cls.__name__, name)
        accepted = set(names[1:])
        required = {n for n in names[1:] if params[n].default is inspect.Parameter.empty}
        assert set(kwargs) <= accepted, '%s sends %s that %s.%s does not take' % (
            method_name, sorted(set(kwargs) - accepted), manager_cls.__name__, name)
        assert required <= set(kwargs), '%s does not send %s that %s.%s needs' % (
            method_name, sorted(required - set(kwargs)), manager_cls.__name__, name)


@pytest.mark.parametrize('module,client_cls,manager_cls', PAIRS)
def test_every_client_method_sends_its_own_name(module, client_cls, manager_cls):
    """A client method named like the endpoint it reaches keeps the API greppable."""
    for method_name in _public_methods(client_cls):
        [(_kind, name, _kwargs)] = _sent(client_cls, method_name)
        assert name == method_name


class _OneMinorBehind(object):
    """A conductor endpoint of the version before this client's (a rolling upgrade)."""

    def __init__(self):
        import oslo_messaging as messaging
        major, minor = conductor_rpcapi.RPC_API_VERSION.split('.')
        self.target = messaging.Target(version='%s.%d' % (major, int(minor) - 1))

    def host_list(self, context):
        return ['old conductor']


def test_a_call_that_did_not_change_reaches_an_endpoint_one_version_behind():
    from vmmig import conf
    from vmmig import rpc
    server = rpc.get_server(conf.CONF.conductor.topic, 'old', [_OneMinorBehind()])
    server.start()
    try:
        api = conductor_rpcapi.ConductorAPI(timeout=5)
        assert api.host_list() == ['old conductor']
    finally:
        server.stop()
        server.wait()


def test_upgrade_levels_cap_what_is_sent(conf):
    from oslo_messaging.rpc import client as om_client
    conf.conf.config(conductor='1.0', agent='1.0', group='upgrade_levels')
    api = conductor_rpcapi.ConductorAPI()
    agents = agent_rpcapi.AgentAPI(server_of=lambda host: 'agents-ab' if host == 'a' else host)
    with mock.patch.object(om_client._BaseCallContext, 'cast') as cast, \
            mock.patch.object(om_client._BaseCallContext, 'call') as call:
        # A 1.0 conductor needs the full report even when nothing changed.
        assert api.heartbeat('a', {'f': 1}, [], 1.0, changed=False) is True
        assert cast.call_args.kwargs['facts'] == {'f': 1}
        with pytest.raises(exception.Invalid, match=r'\[upgrade_levels\] conductor'):
            api.agent_started('a', {}, [], 1.0, agent='agents-ab')
        # A 1.0 agent is not asked to hold its answer.
        agents.job_status('b', 7, wait=5)
        assert 'wait' not in call.call_args.kwargs
        with pytest.raises(exception.Invalid, match=r'\[upgrade_levels\] agent'):
            agents.ping('a')


def test_an_upgrade_level_this_release_cannot_honour_is_refused(conf):
    conf.conf.config(conductor='2.0', group='upgrade_levels')
    with pytest.raises(exception.InvalidOption, match=r'\[upgrade_levels\] conductor'):
        conductor_rpcapi.ConductorAPI()
