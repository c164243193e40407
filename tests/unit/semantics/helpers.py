"""Clusters written per test, the services that run them, and views of the hosts."""

import json
import os
import time

from tests import fixtures as vfix
from vmmig.conductor import rpcapi
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import models
from vmmig.db import states
from vmmig import embedded
from vmmig import exception
from vmmig import service

TERMINAL = tuple(states.TERMINAL)

# Enough room everywhere, one cluster, one shared instances storage.
HOST = {'vcpus': 16, 'memory_mb': 32768, 'disk_gb': 500, 'shared_storage': 'nfs1',
        'link_gbps': 10}


def as_role(*roles, user='tester'):
    """A function giving a request context of ``user`` with ``roles``, one per call."""
    return lambda: vcontext.new(user, roles)


def disk(location, size_gb=10, name='vda'):
    spec = {'name': name, 'size_gb': size_gb, 'location': location}
    if location == 'volume':
        spec['volume'] = 'vol-%s' % name
    return spec


def vm(host, location='shared', power_state='running', **kw):
    spec = {'host': host, 'power_state': power_state,
            'disks': kw.pop('disks', None) or [disk(location)]}
    spec.update(kw)
    return spec


def cluster(instances, hosts=('a', 'b'), **host_overrides):
    """Hosts alike but for ``host_overrides`` ({host: {fact: value}})."""
    out = {'hosts': {}, 'instances': instances}
    for name in hosts:
        out['hosts'][name] = dict(HOST, **host_overrides.get(name, {}))
    return out


# A guest that dirties memory faster than a 1 Gbit/s link carries, all of its RAM
# writable: pre-copy never converges on its own.
HOT = {'dirty_rate_mbps': 4000, 'wws_mb': 1024}
SLOW_LINK = {'link_gbps': 1}


class Cloud(object):
    """Conductor and agents of one cluster in this process, over the fake transport."""

    def __init__(self, cluster, agent_groups=None, **overrides):
        self.cluster = cluster
        self.overrides = overrides
        self.fixture = vfix.EmbeddedFixture(cluster, agent_groups=agent_groups, **overrides)
        self.api = None

    def start(self):
        self.fixture.setUp()
        self.api = rpcapi.ConductorAPI(context=as_role('admin'))
        self.wait_hosts_up()
        return self

    def stop(self):
        # A migration left running would keep the conductor's workers busy past the
        # agents' end: abort what can be aborted and let the rest finish first.
        try:
            for migration in db.migration_list(state=tuple(states.ACTIVE) + (states.QUEUED,)):
                try:
                    self.api.migration_abort(migration['id'])
                except exception.InvalidState:
                    pass
            self.services.wait_idle(timeout=30)
        finally:
            self.fixture.cleanUp()

    @property
    def state_path(self):
        return self.fixture.conf.state_path

    @property
    def services(self):
        return self.fixture.services

    def restart_services(self):
        """Stop the conductor and agents, start new ones on the same state and database."""
        self.fixture.services.stop()
        self.fixture.services = embedded.EmbeddedServices()
        self.fixture.services.start()
        self.fixture.addCleanup(self.fixture.services.stop)
        self.api = rpcapi.ConductorAPI(context=as_role('admin'))
        self.wait_hosts_up()

    def agent(self, host):
        return next(a for a in self.services.agents if getattr(a, 'host', None) == host)

    def stop_agent(self, host):
        """The host dies: its agent stops answering and sending heartbeats."""
        agent = self.agent(host)
        agent.stop()
        self.services.agents.remove(agent)
        wait_for(lambda: db.host_get(host)['state'] == 'down', 30,
                 'host %s to be marked down' % host)

    def start_agent(self, host):
        """The host comes back: a new agent on its state files."""
        agent = service.AgentService(host)
        agent.start()
        self.services.agents.append(agent)
        return agent

    def wait_hosts_up(self, timeout=30):
        names = set(self.cluster['hosts'])
        wait_for(lambda: names <= {h['name'] for h in db.host_list() if h['state'] == 'up'},
                 timeout, 'hosts %s up' % sorted(names))

    # Waiting ---------------------------------------------------------------

    def wait_state(self, migration, wanted, timeout=60):
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        ident = migration['id'] if isinstance(migration, dict) else migration
        record = {}

        def reached():
            record.update(db.migration_get(ident))
            return record['state'] in wanted
        wait_for(reached, timeout, lambda: 'migration %s to be %s (it is %s: %s)' % (
            ident, '/'.join(wanted), record.get('state'), record.get('reason')))
        return dict(record)

    def wait_end(self, migration, timeout=60):
        return self.wait_state(migration, TERMINAL, timeout)

    def run(self, instance, migration_type, host=None, **options):
        """Submit one migration and wait for its end."""
        return self.wait_end(self.api.migrate_server(instance, migration_type, host=host,
                                                     options=options))

    # What the hosts hold ---------------------------------------------------

    def host_states(self):
        """{host: {instance name: instance}} from the simulator's state files."""
        return vfix.sim_host_views(self.state_path)

    def hosts_of(self, name):
        """Hosts where ``name`` is defined (incoming copies included, marked '+incoming')."""
        return vfix.sim_places(self.state_path, name)

    def volumes(self, host):
        """{volume: instance} connected to ``host``, from its state file."""
        path = os.path.join(self.state_path, 'sim', 'hosts', host + '.json')
        with open(path) as f:
            return json.load(f).get('volumes', {})

    def on(self, host, name):
        return self.host_states().get(host, {}).get(name)

    def find(self, host, name):
        """What the agent of ``host`` answers about ``name`` (None: not there)."""
        return self.agent(host).manager.find_instance({}, name)


# Columns that heartbeats and progress reports change all the time. A host's facts
# too: a heartbeat during a live migration reports the incoming VM's room, and no
# operator request writes facts, so masking them hides nothing a refusal could change.
VOLATILE = {
    'hosts': {'last_heartbeat', 'updated_at', 'reported_at', 'facts'},
    'instances': {'updated_at'},
    'services': {'last_seen'},
    'migrations': {'updated_at', 'progress_at', 'bytes_total', 'bytes_processed',
                   'bytes_remaining', 'disk_total', 'disk_remaining', 'dirty_rate',
                   'iteration', 'downtime_ms'},
}


def stable_dump():
    """db.dump() without the columns the running services keep touching."""
    out, dump = {}, db.dump()
    for table in models.Base.metadata.sorted_tables:
        names = [c.name for c in table.columns]
        masked = VOLATILE.get(table.name, ())
        out[table.name] = sorted(
            (tuple(v for n, v in zip(names, row) if n not in masked)
             for row in dump[table.name]), key=repr)
    return out


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %s s waiting for %s' % (
                timeout, what() if callable(what) else what))
        time.sleep(0.02)


def shared_files(cloud, storage):
    """Files on the simulated shared instances storage ``storage``."""
    return sorted(os.listdir(os.path.join(cloud.state_path, 'sim', 'shared', storage)))


def write_health(cloud, host, status, reason=None):
    """What the ``sim`` health monitor of ``host`` reports from now on."""
    from vmmig.health import sim as sim_health
    path = sim_health.path(cloud.state_path, host)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump({'status': status, 'reason': reason}, f)
    os.rename(path + '.tmp', path)


def api_as(user, *roles):
    """The conductor's client, asking as ``user`` with ``roles`` (admin unless told)."""
    return rpcapi.ConductorAPI(context=as_role(*(roles or ('admin',)), user=user))
