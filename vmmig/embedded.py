"""The all-in-one default: conductor and agents inside the calling process.

With no transport_url configured, every CLI command runs the services here
over oslo.messaging's in-process transport, with SQLite and the simulator:
no broker, no daemon. Migrations survive in the database between commands;
a held one stays held until a later command resumes it.
"""

import threading
import time

from vmmig import conf
from vmmig.db import api as db
from vmmig.db import schema
from vmmig.db import states
from vmmig.hypervisor.sim import cluster
from vmmig import rpc
from vmmig import service

CONF = conf.CONF

BUSY = (states.QUEUED,) + tuple(states.ACTIVE)


class EmbeddedServices(object):

    def __init__(self, agent_groups=None):
        """``agent_groups``: {name: [host, ...]} served by one AgentGroupService each
        (as vmmig.cmd.agents_bulk does); every other host gets an agent of its own."""
        self.conductor = None
        self.agents = []
        self.agent_groups = agent_groups or {}

    def hosts(self):
        if CONF.drivers.hypervisor == 'sim':
            return sorted(cluster.load(CONF.sim.cluster_file)['hosts'])
        return [CONF.host]

    def start(self):
        schema.sync()
        rpc.init()
        self.conductor = service.ConductorService(name='embedded-conductor')
        self.conductor.start()
        grouped = {h for hosts in self.agent_groups.values() for h in hosts}
        for name, hosts in sorted(self.agent_groups.items()):
            group = service.AgentGroupService(name, hosts)
            group.start()
            self.agents.append(group)
        for host in self.hosts():
            if host not in grouped:
                agent = service.AgentService(host)
                agent.start()
                self.agents.append(agent)
        return self

    def wait_idle(self, timeout=None):
        """Until no migration is queued or under way (held ones stay held)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while db.migration_list(state=BUSY, limit=1):
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.conductor.manager.dispatcher.wake()
            time.sleep(0.05)
        return True

    def power_cut(self, host, timeout=120):
        """The demo's dead host: its agent stops (no heartbeat, no answer); back once
        the HA monitor's recovery of the host has ended."""
        from vmmig.db import recoveries
        agent = next(a for a in self.agents if getattr(a, 'host', None) == host)
        agent.stop()
        self.agents.remove(agent)
        deadline = time.monotonic() + timeout
        while not [r for r in recoveries.list_(host=host)
                   if r['state'] not in recoveries.UNFINISHED]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return self.wait_idle(max(1.0, deadline - time.monotonic()))

    def stop(self):
        # Each RPC server takes up to a second to let its idle workers go: stop them
        # side by side, not one after the other.
        services = list(reversed(self.agents)) + ([self.conductor] if self.conductor else [])
        threads = [threading.Thread(target=s.stop, name='vmmig-stop') for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.agents = []
        self.conductor = None
        rpc.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
