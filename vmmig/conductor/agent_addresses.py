"""Which agent process to address for a host.

A host is served by an agent process that listens as an RPC server of its own
name, except where one process serves several simulated hosts
(``vmmig.cmd.agents_bulk``): it listens once, under the name it registered
its hosts with, and each call says which host it is for (as Ironic's API
addresses the conductor that manages a node, not the node).

What was learnt is trusted for [conductor] heartbeat_timeout: a host that moves
to another agent process registers again, and another conductor reads that
from the database once its entry expires, or at once when the process it
still addresses refuses the call (HostNotServed).
"""

import threading
import time

from vmmig import conf
from vmmig.db import api as db
from vmmig import exception

CONF = conf.CONF


class AgentAddresses(object):

    def __init__(self):
        self._lock = threading.Lock()
        self._known = {}  # host -> (RPC server, when learnt)

    def server_of(self, host):
        now = time.monotonic()
        with self._lock:
            known = self._known.get(host)
        if known is not None and now - known[1] < CONF.conductor.heartbeat_timeout:
            return known[0]
        try:
            server = db.host_agent(host)
        except exception.HostNotFound:
            # Not registered (yet): its own name is the only address it can have.
            return host
        self.learn(host, server)
        return server

    def learn(self, host, server):
        with self._lock:
            self._known[host] = (server or host, time.monotonic())

    def forget(self, host):
        """The next lookup reads the database (a process refused a call for ``host``)."""
        with self._lock:
            self._known.pop(host, None)
