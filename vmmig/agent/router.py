"""One RPC endpoint for the agents of several hosts in one process.

Each oslo.messaging RPC server has its own broker connection, consumer thread
and polling; a hundred of them in one process cost more CPU per call than the
calls themselves (see benchmarks/orchestration.py). A process that serves many
simulated hosts listens once and hands each call to the agent of the ``host``
it names (agent RPC API 1.2).
"""

from vmmig.agent import manager as agent_manager
from vmmig import arguments
from vmmig import exception


class HostRouter(object):
    target = agent_manager.AgentManager.target

    def __init__(self, name, managers):
        self.name = name
        self._managers = {m.host: m for m in managers}

    def __getattr__(self, method):
        # The dispatcher looks methods up by name: offer the agents' public ones.
        if method.startswith('_') or not callable(
                getattr(agent_manager.AgentManager, method, None)):
            raise AttributeError(method)

        def route(context, host=None, **kwargs):
            # Checked here too: the host picks the agent before the agent checks the rest.
            host = arguments.check(method, 'host', arguments.Name('host'), host)
            manager = self._managers.get(host)
            if manager is None:
                raise exception.HostNotServed(agent=self.name, host=host,
                                              served=', '.join(sorted(self._managers)))
            return getattr(manager, method)(context, **kwargs)
        return route
