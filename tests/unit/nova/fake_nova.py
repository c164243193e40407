"""An in-memory stand-in for vmmig.backends.nova.client.Nova, for unit tests of the nova
backend's state machine: same methods, Nova's JSON shapes (nova_samples), and Nova's
statuses moving one step per look at the migrations, as Nova's own would between polls.

It is not Nova: tests/functional/test_nova_backend.py runs the same paths against the
real services.
"""

import itertools
import threading

from vmmig import exception

from tests.unit.nova import nova_samples as samples


class FakeNova(object):

    def __init__(self, hosts=('compute1', 'compute2', 'compute3')):
        self.lock = threading.RLock()
        self.services = {h: samples.service(id='svc-%s' % h, host=h) for h in hosts}
        self.hvs = {h: samples.hypervisor(
            id='hv-%s' % h, hypervisor_hostname=h,
            service={'host': h, 'id': 'svc-%s' % h, 'disabled_reason': None})
            for h in hosts}
        self.vms = {}
        self.migrations_ = []
        self.actions_ = {}
        self.ids = itertools.count(1)
        self.unreachable = False
        #: live migrations stay running for this many looks unless forced or aborted
        self.live_steps = 3
        #: the next move Nova accepts fails in its conductor with this message
        self.fail_next = None
        #: hosts whose service Nova refuses to disable or enable
        self.refuse_service_change = set()
        self.calls = []

    # Set-up --------------------------------------------------------------------

    def boot(self, name, host, vm_state='active'):
        uuid = 'uuid-%s' % name
        power = {'active': 1, 'stopped': 4, 'paused': 3}[vm_state]
        self.vms[uuid] = samples.server(
            id=uuid, name=name, status={'active': 'ACTIVE', 'stopped': 'SHUTOFF',
                                        'paused': 'PAUSED'}[vm_state],
            **{'OS-EXT-SRV-ATTR:host': host, 'OS-EXT-SRV-ATTR:hypervisor_hostname': host,
               'OS-EXT-STS:vm_state': vm_state, 'OS-EXT-STS:power_state': power})
        return uuid

    # The client's calls ------------------------------------------------------------

    def _reach(self, what):
        self.calls.append(what)
        if self.unreachable:
            raise exception.NovaUnavailable(where='compute endpoint http://nova.invalid',
                                            error='Unable to establish connection')

    def compute_services(self):
        self._reach('services')
        return [dict(s) for s in self.services.values()]

    def hypervisors(self):
        self._reach('hypervisors')
        return [dict(h) for h in self.hvs.values()]

    def servers(self):
        self._reach('servers')
        return [dict(s) for s in self.vms.values()]

    def server(self, uuid, instance=None):
        self._reach('server')
        if uuid not in self.vms:
            raise exception.ServerNotInNova(server=uuid, instance=instance or uuid,
                                            error='Instance %s could not be found. '
                                                  '(HTTP 404)' % uuid)
        return dict(self.vms[uuid])

    def migrations(self, uuid):
        self._reach('migrations')
        with self.lock:
            for migration in self.migrations_:
                if migration['instance_uuid'] == uuid:
                    self._advance(migration)
            return [dict(m) for m in self.migrations_ if m['instance_uuid'] == uuid]

    def live_migration(self, uuid, migration_id):
        self._reach('live_migration')
        for m in self.migrations_:
            if m['id'] == migration_id and m['status'] == 'running':
                return samples.server_migration(id=migration_id, server_uuid=uuid)
        return None

    def actions(self, uuid):
        self._reach('actions')
        return list(self.actions_.get(uuid, []))

    def action(self, uuid, request_id):
        self._reach('action')
        return next(a for a in self.actions_.get(uuid, []) if a['request_id'] == request_id)

    def live_migrate(self, uuid, host, instance):
        self._reach('live_migrate')
        server = self.server(uuid)
        if server['OS-EXT-STS:vm_state'] not in ('active', 'paused') or \
                server['OS-EXT-STS:task_state']:
            raise exception.NovaRefused(
                action='live-migrate %s' % instance,
                error="Cannot 'os-migrateLive' instance %s while it is in vm_state %s "
                      "(HTTP 409)" % (uuid, server['OS-EXT-STS:vm_state']))
        self._start(uuid, host, 'live-migration', 'live-migration', 'migrating', 'queued')

    def migrate(self, uuid, host, instance):
        self._reach('migrate')
        self._start(uuid, host, 'migration', 'migrate', 'resize_prep', 'pre-migrating')

    def evacuate(self, uuid, host, instance):
        self._reach('evacuate')
        source = self.vms[uuid]['OS-EXT-SRV-ATTR:host']
        service = self.services[source]
        if service['state'] == 'up' and not service['forced_down']:
            raise exception.NovaRefused(
                action='evacuate %s' % instance,
                error='Compute service of %s is still in use. (HTTP 400)' % source)
        self._start(uuid, host, 'evacuation', 'evacuate', 'rebuilding', 'accepted')

    def confirm_resize(self, uuid, instance):
        self._reach('confirm_resize')
        self._last(uuid)['status'] = 'confirming'

    def revert_resize(self, uuid, instance):
        self._reach('revert_resize')
        self._last(uuid)['status'] = 'reverting'

    def abort(self, uuid, migration_id, instance):
        self._reach('abort')
        migration = next(m for m in self.migrations_ if m['id'] == migration_id)
        migration['abort'] = True

    def force_complete(self, uuid, migration_id, instance):
        self._reach('force_complete')
        migration = next(m for m in self.migrations_ if m['id'] == migration_id)
        if migration['status'] != 'running':
            raise exception.NovaRefused(action='force complete', error='not running (HTTP 400)')
        migration['force'] = True

    def disable_service(self, service_id, host, reason):
        self._reach('disable %s' % host)
        self._service(service_id).update(status='disabled', disabled_reason=reason)

    def enable_service(self, service_id, host):
        self._reach('enable %s' % host)
        self._service(service_id).update(status='enabled', disabled_reason=None)

    def _service(self, service_id):
        service = next(s for s in self.services.values() if s['id'] == service_id)
        if service['host'] in self.refuse_service_change:
            raise exception.NovaRefused(action='change nova-compute on %s' % service['host'],
                                        error='Service %s not found. (HTTP 404)'
                                              % service_id)
        return service

    def force_down(self, service_id, host):
        self._reach('force_down')
        self.services[host]['forced_down'] = True

    # Nova's side -----------------------------------------------------------------

    def _last(self, uuid):
        return max((m for m in self.migrations_ if m['instance_uuid'] == uuid),
                   key=lambda m: m['id'])

    def _start(self, uuid, host, kind, action, task_state, status):
        with self.lock:
            server = self.vms[uuid]
            source = server['OS-EXT-SRV-ATTR:host']
            dest = host or next(h for h, s in sorted(self.services.items())
                                if h != source and s['state'] == 'up'
                                and not s['forced_down'] and s['status'] == 'enabled')
            server['OS-EXT-STS:task_state'] = task_state
            migration = samples.migration(
                id=next(self.ids), migration_type=kind, status=status, instance_uuid=uuid,
                source_compute=source, dest_compute=dest, source_node=source,
                dest_node=dest)
            migration['steps'] = 0
            request = 'req-%d' % migration['id']
            if self.fail_next:
                migration['fail'] = self.fail_next
                self.fail_next = None
            self.migrations_.append(migration)
            self.actions_.setdefault(uuid, []).append(samples.failed_action(
                action=action, request_id=request, message=None,
                events=[dict(samples.failed_action()['events'][0], result='Success',
                             details=None)]))

    def _advance(self, m):
        server = self.vms[m['instance_uuid']]
        m['steps'] += 1
        if m.get('fail') and m['status'] not in ('error',):
            m['status'] = 'error'
            server['OS-EXT-STS:task_state'] = None
            action = self.actions_[m['instance_uuid']][-1]
            action['message'] = 'Error'
            action['events'][0].update(result='Error', details=m['fail'])
            return
        kind, status = m['migration_type'], m['status']
        if kind == 'live-migration':
            if status == 'queued':
                m['status'] = 'running'
            elif status == 'running':
                if m.get('abort'):
                    m['status'] = 'cancelled'
                    server['OS-EXT-STS:task_state'] = None
                elif m.get('force') or m['steps'] > self.live_steps:
                    m['status'] = 'completed'
                    self._move(server, m['dest_compute'])
        elif kind == 'migration':
            if status == 'pre-migrating':
                m['status'] = 'finished'
                self._move(server, m['dest_compute'])
                server['status'] = 'VERIFY_RESIZE'
                server['was'] = server['OS-EXT-STS:vm_state']
                server['OS-EXT-STS:vm_state'] = 'resized'
            elif status == 'confirming':
                m['status'] = 'confirmed'
                self._settle(server)
            elif status == 'reverting':
                m['status'] = 'reverted'
                self._move(server, m['source_compute'])
                self._settle(server)
        elif kind == 'evacuation':
            if status == 'accepted':
                m['status'] = 'done'
                self._move(server, m['dest_compute'])

    @staticmethod
    def _move(server, host):
        server['OS-EXT-SRV-ATTR:host'] = host
        server['OS-EXT-SRV-ATTR:hypervisor_hostname'] = host
        server['OS-EXT-STS:task_state'] = None

    @staticmethod
    def _settle(server):
        server['OS-EXT-STS:vm_state'] = server.pop('was')
        server['status'] = {'active': 'ACTIVE', 'stopped': 'SHUTOFF'}.get(
            server['OS-EXT-STS:vm_state'], 'ACTIVE')
