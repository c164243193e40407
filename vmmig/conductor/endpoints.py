"""What each of the conductor's two RPC servers dispatches to.

The broker tells apart who may publish on which topic, not which method a message
names: the agents' reports get a topic of their own ([conductor] report_topic) whose
endpoint offers the report methods and nothing else, and the operators' topic offers
the operators' methods. Either offers only methods that declare their arguments and
their policy rule: the manager's other public methods (start, stop, record_migration)
are not RPC endpoints.
"""

from vmmig import conf

CONF = conf.CONF

# What agents call. host_health is asked by outside monitors too (operators' topic).
REPORTS = frozenset(['heartbeat', 'agent_started', 'migration_progress', 'host_health'])
AGENTS_ONLY = REPORTS - {'host_health'}


def declared(manager):
    """The manager's methods that have a policy rule: the RPC endpoints."""
    return frozenset(name for name in dir(type(manager)) if not name.startswith('_')
                     and getattr(getattr(type(manager), name), 'policy_rule', None))


class Endpoint(object):
    """The named methods of the manager, and no other attribute, for one RPC server."""

    def __init__(self, manager, methods):
        self.target = manager.target
        self.methods = frozenset(methods)
        self._manager = manager

    def __getattr__(self, name):
        # The dispatcher looks methods up by name (hasattr, then getattr).
        if name in self.__dict__.get('methods', ()):
            return getattr(self._manager, name)
        raise AttributeError(name)


def operator_endpoint(manager):
    methods = declared(manager)
    if not CONF.conductor.reports_on_operator_topic:
        methods -= AGENTS_ONLY
    return Endpoint(manager, methods)


def report_endpoint(manager):
    return Endpoint(manager, declared(manager) & REPORTS)
