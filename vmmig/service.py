"""The conductor and agent services: an RPC server each, plus their loops."""

from concurrent import futures
import logging
import threading
import time

import oslo_messaging as messaging

from vmmig.agent import manager as agent_manager
from vmmig.agent import router
from vmmig.conductor import endpoints
from vmmig.conductor import manager as conductor_manager
from vmmig import conf
from vmmig import plugins
from vmmig import rpc

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class ConductorService(object):

    def __init__(self, name=None):
        plugins.validate_enabled()
        self.manager = conductor_manager.ConductorManager(name)
        # Two topics, so that the broker lets agents publish reports and nothing else.
        self.servers = [
            rpc.get_server(CONF.conductor.topic, self.manager.name,
                           [endpoints.operator_endpoint(self.manager)]),
            rpc.get_server(CONF.conductor.report_topic, self.manager.name,
                           [endpoints.report_endpoint(self.manager)]),
        ]

    def start(self):
        for server in self.servers:
            server.start()
        self.manager.start()
        LOG.info('Conductor %s started', self.manager.name)

    def stop(self):
        self.manager.stop()
        for server in self.servers:
            server.stop()
        for server in self.servers:
            server.wait()


class AgentService(object):

    def __init__(self, host=None, served_by=None):
        """``served_by``: the name of an AgentGroupService whose RPC server takes this
        host's calls; unset, the agent listens under the host's own name."""
        self.host = host or CONF.host
        self.driver = plugins.hypervisor(self.host)
        self.driver.validate()
        self.manager = agent_manager.AgentManager(self.host, self.driver, agent=served_by)
        self.server = (None if served_by else
                       rpc.get_server(CONF.agent.topic, self.host, [self.manager]))
        self._stop = threading.Event()
        self._thread = None

    def start(self, register_timeout=60):
        self.manager.init_host()
        if self.server is not None:
            self.server.start()
        deadline = time.monotonic() + register_timeout
        # A call sent before the conductor has bound its queue is dropped by the broker,
        # not delivered late: retry with short attempts, growing to rpc_timeout.
        attempt = 1
        while True:
            try:
                self.manager.register(timeout=min(attempt, CONF.conductor.rpc_timeout))
                break
            except messaging.MessagingTimeout:
                if time.monotonic() > deadline:
                    raise
                LOG.warning('Agent %s: the conductor does not answer yet', self.host)
                attempt *= 2
        self._thread = threading.Thread(target=self._heartbeats, daemon=True,
                                        name='vmmig-heartbeat-%s' % self.host)
        self._thread.start()
        LOG.info('Agent %s started', self.host)

    def _heartbeats(self):
        while not self._stop.wait(CONF.agent.heartbeat_interval):
            try:
                self.manager.heartbeat()
            except Exception:  # noqa: a missed heartbeat is what the conductor watches for
                LOG.warning('Agent %s: heartbeat failed', self.host, exc_info=True)
            try:
                self.manager.check_health()
            except Exception:  # noqa: the next heartbeat asks again
                LOG.warning('Agent %s: health report failed', self.host, exc_info=True)

    def stop(self):
        self._stop.set()
        if self.server is not None:
            self.server.stop()
            self.server.wait()
        self.driver.cleanup_host()


class AgentGroupService(object):
    """The agents of several hosts in one process, behind one RPC server ``name``.

    Each host keeps its own driver, registration and heartbeats; only the listening
    is shared (see vmmig.agent.router).
    """

    def __init__(self, name, hosts):
        self.name = name
        self.agents = [AgentService(host, served_by=name) for host in hosts]
        self.server = rpc.get_server(CONF.agent.topic, name, [
            router.HostRouter(name, [a.manager for a in self.agents])])

    def start(self):
        # Listening before any host registers: the conductor may call at once.
        self.server.start()
        # Registration waits for the conductor's answer: side by side.
        with futures.ThreadPoolExecutor(min(16, len(self.agents))) as pool:
            list(pool.map(lambda agent: agent.start(), self.agents))
        LOG.info('Agent process %s serves %d hosts', self.name, len(self.agents))

    def stop(self):
        self.server.stop()
        with futures.ThreadPoolExecutor(min(16, len(self.agents))) as pool:
            list(pool.map(lambda agent: agent.stop(), self.agents))
        self.server.wait()


def wait_for_signal(services):
    """Run until SIGTERM/SIGINT, then stop the services in reverse order."""
    import signal
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    while not stop.wait(1.0):
        pass
    for service in reversed(services):
        service.stop()
