"""The nova backend: a cloud whose VMs Nova owns.

Hosts and VMs are discovered from Nova's API (compute services, hypervisors,
servers) every [nova] sync_interval and written to the records the agents'
heartbeats fill on the default backend, so prechecks, eligible hosts, holds,
limits, plans, maintenance and HA read them unchanged. Every migration is asked
of Nova and followed to its end there (vmmig/backends/nova/moves.py).
"""

import logging
import threading
import time

from vmmig.backends import base
from vmmig.backends.nova import client
from vmmig.backends.nova import maintenance
from vmmig.backends.nova import moves
from vmmig.backends.nova import views
from vmmig import conf
from vmmig.db import api as db
from vmmig import exception
from vmmig import names

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class NovaHosts(object):
    """What the prechecks and the migration context ask about a VM, answered by Nova."""

    def __init__(self, backend):
        self.backend = backend

    def get_instance(self, host, name):
        """The VM as Nova shows it now. One Nova shows elsewhere than vmmig last saw it
        is recorded where Nova says, and the request refused: asked again, it is
        checked from there."""
        spec = self.backend.current(name)
        if spec['host'] != host:
            raise exception.PrecheckFailed(instance=name, reasons=[
                'Nova shows it on %s, not on %s where vmmig saw it last; its record now '
                'says %s: ask again' % (spec['host'], host, spec['host'])])
        return spec

    def find_instance(self, host, name):
        try:
            spec = self.backend.current(name)
        except exception.ServerNotInNova:
            return None
        return spec if spec['host'] == host else None


class NovaBackend(base.Backend):
    name = 'nova'
    # Nova says which compute services are down (and which are forced down):
    # an unreachable Nova marks no host down.
    heartbeats = False
    uses_agents = False

    def __init__(self, conductor):
        super().__init__(conductor)
        self.nova = client.Nova()
        self._hosts = NovaHosts(self)
        self.moves = moves.NovaMoves(self)
        self._stop = threading.Event()
        self._thread = None

    @property
    def hosts(self):
        return self._hosts

    # Discovery ---------------------------------------------------------------------

    def start(self):
        self._stop.clear()
        try:
            self.sync()
        except exception.VmmigException as e:
            LOG.error('Nova backend: the first discovery failed: %s; trying again every '
                      '%.0f s', e, CONF.nova.sync_interval)
        self._thread = threading.Thread(target=self._loop, name='vmmig-nova-sync',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self):
        while not self._stop.wait(CONF.nova.sync_interval):
            try:
                self.sync()
            except exception.VmmigException as e:
                LOG.warning('Nova backend: discovery failed: %s', e)
            except Exception:  # noqa: the loop must survive a database hiccup
                LOG.exception('Nova backend: discovery failed')

    def sync(self):
        """One discovery: every compute service with its hypervisors becomes a host
        record, every server with a host an instance record, as Nova shows them."""
        reported_at = time.time()
        shared = CONF.nova.shared_instances_storage
        services = self.nova.compute_services()
        if CONF.nova.disable_in_maintenance:
            maintenance.mirror(self.nova, services, {
                row['name']: row['maintenance_reason'] for row in db.host_list()
                if row['maintenance']})
        hypervisors = self.nova.hypervisors()
        servers = [s for s in self.nova.servers()
                   if s.get('OS-EXT-STS:vm_state') not in ('deleted', 'soft-delete')]
        by_host = {}
        for hypervisor in hypervisors:
            by_host.setdefault((hypervisor.get('service') or {}).get('host'),
                               []).append(hypervisor)
        known = set()
        for service in services:
            name = service['host']
            if not names.is_valid(name):
                LOG.warning('Nova backend: compute host %r left out: %s', name,
                            names.problem(name))
                continue
            known.add(name)
            state, facts = views.host(service, by_host.get(name, []), shared)
            if state == 'up':
                db.host_heartbeat(name, facts, reported_at=reported_at)
            else:
                db.host_down(name, facts)
        for row in db.host_list():
            if row['name'] not in known and row['state'] == 'up':
                db.host_down(row['name'], dict(row['facts'], down_reason='Nova no longer '
                                               'lists a nova-compute service on %s'
                                               % row['name']))
        vm_names = views.instance_names(servers)
        per_host = {name: [] for name in known}
        recorded = {row['name']: row['host'] for row in db.instance_list()}
        for server in servers:
            host = views.host_of(server)
            if host in per_host:
                spec = views.instance(server, vm_names[server['id']], shared)
                per_host[host].append(spec)
                if recorded.get(spec['name']) not in (None, host):
                    # Moved in Nova (by vmmig or behind its back): recorded on its new
                    # host first, so the old host's report does not forget it meanwhile.
                    db.instance_relocated(spec['name'], host, spec, reported_at)
        for host, specs in per_host.items():
            db.instances_report(host, specs, reported_at)

    def maintenance_changed(self, host):
        """Tell Nova now (the discovery would tell it within [nova] sync_interval)."""
        self.sync()

    def rediscover(self, instance):
        """Discover now; raise what keeps Nova from answering, or ServerNotInNova."""
        self.sync()
        try:
            db.instance_get(instance)
        except exception.InstanceNotFound:
            raise exception.ServerNotInNova(
                server=instance, instance=instance,
                error='no server of that name (unique) or ID has a host in Nova')

    def uuid_of(self, name):
        """The Nova server of a vmmig instance name (raises InstanceNotFound)."""
        spec = db.instance_get(name)['spec']
        return spec.get('uuid') or name

    def current(self, name):
        """The instance spec of ``name`` as Nova shows the server now."""
        server = self.nova.server(self.uuid_of(name), instance=name)
        return views.instance(server, name, CONF.nova.shared_instances_storage)

    # Migrations --------------------------------------------------------------------

    def execute(self, mtype, ctx):
        self.moves.execute(mtype, ctx)

    def recover(self, mtype, ctx):
        self.moves.recover(mtype, ctx)

    def abort(self, mtype, record):
        if mtype.supports_job_control:
            self.moves.job_control(record, 'abort')
        # A cold migration is reverted once Nova waits for its confirmation, and an
        # evacuation cannot be stopped: the migration's own loop sees the request.

    def force_complete(self, record):
        return self.moves.job_control(record, 'force-complete')
