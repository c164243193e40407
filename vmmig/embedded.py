"""The all-in-one default: conductor and agents inside the calling process.

With no transport_url configured, every CLI command runs the services here
over oslo.messaging's in-process transport, with SQLite and the simulator:
no broker, no daemon. Migrations survive in the database between commands;
a held one stays held until a later command resumes it.

Two commands may run at once: each process's conductor has a name of its own,
so neither takes the other's running migrations for orphans. Those of a
process that was killed are adopted by a command started once its heartbeat
is older than [conductor] heartbeat_timeout.
"""

import logging
import os
import socket
import threading
import time
import uuid

import oslo_messaging as messaging

from vmmig.backends import base as backends
from vmmig import conf
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig.db import schema
from vmmig.db import states
from vmmig import exception
from vmmig.hypervisor.sim import cluster
from vmmig.plans import states as plan_states
from vmmig import rpc
from vmmig import service

LOG = logging.getLogger(__name__)
CONF = conf.CONF


def conductor_name():
    """This process's conductor: host and pid for the person reading ``owner``, and a
    random part, since a pid is used again once its process is gone."""
    return 'embedded-%s-%d-%s' % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])


def _forget_killed_commands():
    """The rows of embedded conductors that were killed, once nothing is theirs any more:
    silent past heartbeat_timeout, and owning no unfinished migration (whoever adopts
    those reads a missing row as a stopped conductor too)."""
    owners = {m['owner'] for m in db.migration_list(state=states.ACTIVE)}
    silent_since = time.time() - CONF.conductor.heartbeat_timeout
    for row in db.service_list('conductor'):
        if (row['name'].startswith('embedded-') and row['last_seen'] < silent_since
                and row['name'] not in owners):
            db.service_delete(row['name'])


class EmbeddedServices(object):

    def __init__(self, agent_groups=None):
        """``agent_groups``: {name: [host, ...]} served by one AgentGroupService each
        (as vmmig.cmd.agents_bulk does); every other host gets an agent of its own."""
        self.conductor = None
        self.agents = []
        self.agent_groups = agent_groups or {}

    def hosts(self):
        """The hosts whose agents run here: none with a backend that has no agents
        (Nova's hosts are discovered, not served)."""
        if not backends.uses_agents():
            return []
        if CONF.drivers.hypervisor == 'sim':
            return sorted(cluster.load(CONF.sim.cluster_file)['hosts'])
        return [CONF.host]

    def start(self):
        # The cluster file is read before the database is made: a bad one writes nothing.
        all_hosts = self.hosts()
        schema.sync()
        rpc.init()
        self.conductor = service.ConductorService(name=conductor_name())
        self.conductor.start()
        grouped = {h for hosts in self.agent_groups.values() for h in hosts}
        for name, hosts in sorted(self.agent_groups.items()):
            group = service.AgentGroupService(name, hosts)
            group.start()
            self.agents.append(group)
        for host in all_hosts:
            if host not in grouped:
                agent = service.AgentService(host)
                agent.start()
                self.agents.append(agent)
        return self

    @property
    def name(self):
        return self.conductor.manager.name

    def unsettled(self):
        """Whether this process still has work before it may stop: the migrations its
        conductor runs, queued ones (any process may take them) and those of a
        conductor that stopped heartbeating (this one adopts them). Another live
        process's running migrations are that process's to finish."""
        dispatcher = self.conductor.manager.dispatcher
        if dispatcher.running() or db.migration_list(state=states.QUEUED, limit=1):
            return True
        active = db.migration_list(state=states.ACTIVE)
        if not active:
            return False
        alive = dispatcher.alive()
        return any(m['owner'] not in alive for m in active)

    def wait_idle(self, timeout=None):
        """Until unsettled() is False (held ones stay held); False when ``timeout``
        seconds went by first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.unsettled() or _plan_ongoing():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self.conductor.manager.dispatcher.wake()
            time.sleep(0.05)
        return True

    def abort_running(self, requested_by):
        """Stop this process's migrations cleanly: claim nothing more, abort each one
        running (it rolls back to its source, or completes when past the point of no
        return, as `migration abort` does) and wait for it to end, so that no record
        says running for a migration nobody runs. Returns their final records."""
        manager = self.conductor.manager
        dispatcher = manager.dispatcher
        dispatcher.halt()
        ids = dispatcher.running()
        # Asked as the command's user, as `migration abort` would be: the endpoint
        # checks its arguments and its policy rule whoever calls it.
        asking = vcontext.cli_context()
        for migration_id in ids:
            try:
                manager.migration_abort(asking, migration_id, requested_by=requested_by)
            except messaging.ExpectedException as e:  # it ended meanwhile
                LOG.info('Migration %s: not aborted: %s', migration_id, e.exc_info[1])
            except exception.VmmigException as e:
                LOG.info('Migration %s: not aborted: %s', migration_id, e)
        beat = 0.0
        while dispatcher.running():
            # The loop that kept the heartbeat has stopped: without one, another
            # command would adopt these migrations while they roll back here.
            if time.monotonic() - beat >= CONF.conductor.dispatch_interval:
                db.service_heartbeat(self.name, 'conductor')
                beat = time.monotonic()
            time.sleep(0.05)
        return [db.migration_get(i) for i in ids]

    @staticmethod
    def queued():
        return db.migration_list(state=states.QUEUED)

    def power_cut(self, host, timeout=120):
        """The demo's dead host: its agent stops (no heartbeat, no answer); back once
        the HA monitor's recovery of the host has ended."""
        from vmmig.db import plans as plans_db
        from vmmig.plans import states as plan_states
        agent = next(a for a in self.agents if getattr(a, 'host', None) == host)
        agent.stop()
        self.agents.remove(agent)
        deadline = time.monotonic() + timeout
        while not [p for p in plans_db.plan_list(host=host, strategy=plans_db.RECOVERY)
                   if p['state'] in plan_states.TERMINAL]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return self.wait_idle(max(1.0, deadline - time.monotonic()))

    def stop(self):
        if self.conductor is not None:
            # What this conductor still runs (a recovery adopted at the last moment) ends
            # while the agents it calls are there.
            self.conductor.manager.dispatcher.stop()
        # Each RPC server takes up to a second to let its idle workers go: stop them
        # side by side, not one after the other.
        services = list(reversed(self.agents)) + ([self.conductor] if self.conductor else [])
        threads = [threading.Thread(target=s.stop, name='vmmig-stop') for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.conductor is not None:
            # A name is used once: its row would only pile up. Gone, it is not alive.
            db.service_delete(self.name)
            _forget_killed_commands()
        self.agents = []
        self.conductor = None
        rpc.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _plan_ongoing():
    """An action plan still records migrations as the ones before end (its next pass
    may record more): the CLI waits for it as for the migrations themselves."""
    return bool(plans_db.plan_list(state=plan_states.ONGOING))
