"""Nova's views (the JSON of its API at NOVA_API_VERSION) as vmmig's records say them.

Pure functions, no calls: a compute service with its hypervisors becomes a host
record (state and facts), a server an instance spec, a migration of the
server-migrations API the record's progress columns, and what Nova says when it
refuses or fails a move the reason the record keeps.
"""

from vmmig import names
from vmmig.storage import base as storage

#: 2.56: a cold migration to a named host; 2.68: a live migration without "force";
#: 2.84: the details of a failed instance action event (why a move failed after
#: Nova accepted it). Not 2.88 or later: there the hypervisors lose the figures of
#: their resources, which vmmig's capacity filter reads. Not 2.95 or later: there
#: an evacuated server is left stopped, and vmmig keeps its power state.
NOVA_API_VERSION = '2.87'

#: the identifier of the instances storage the hosts share ([nova] shared_instances_storage)
SHARED_STORAGE = 'nova-instances'

#: vm_state -> vmmig power state; a state vmmig cannot move keeps Nova's word
VM_STATES = {
    'active': 'running', 'paused': 'paused', 'suspended': 'suspended', 'stopped': 'shutoff',
    'shelved': 'shelved', 'shelved_offloaded': 'shelved', 'building': 'building',
    'rescued': 'rescued', 'error': 'error', 'soft-delete': 'deleted', 'deleted': 'deleted',
}
#: OS-EXT-STS:power_state (nova.compute.power_state) -> vmmig power state
POWER_STATES = {1: 'running', 3: 'paused', 4: 'shutoff', 6: 'shutoff', 7: 'suspended'}

# The statuses of Nova's migration records, by what they mean to vmmig.
LIVE_UNDER_WAY = frozenset(('accepted', 'queued', 'preparing', 'running', 'post-migrating'))
#: live migrations Nova lets an admin abort (2.24; queued ones since 2.65)
LIVE_ABORTABLE = frozenset(('queued', 'running'))
FAILED = frozenset(('error', 'failed'))
CANCELLED = frozenset(('cancelled',))
#: cold migration: the server waits in VERIFY_RESIZE for its confirmation
COLD_FINISHED = 'finished'
COLD_DONE = frozenset(('confirmed',))
COLD_REVERTED = frozenset(('reverted',))
EVACUATION_DONE = frozenset(('done', 'completed'))
LIVE_DONE = frozenset(('completed',))

#: vmmig migration type -> Nova's migration_type
MIGRATION_TYPES = {'live': 'live-migration', 'cold': 'migration', 'evacuate': 'evacuation'}


def power_state(server):
    """The vmmig power state of a server."""
    vm_state = server.get('OS-EXT-STS:vm_state')
    if vm_state in VM_STATES:
        return VM_STATES[vm_state]
    # resized (waiting in VERIFY_RESIZE) and anything new: what the hypervisor says.
    return POWER_STATES.get(server.get('OS-EXT-STS:power_state'), vm_state or 'unknown')


def host_of(server):
    return server.get('OS-EXT-SRV-ATTR:host') or None


def nova_state(server):
    """What the record keeps of Nova's own view: its words, to compare and to show."""
    return {'status': server.get('status'), 'vm_state': server.get('OS-EXT-STS:vm_state'),
            'task_state': server.get('OS-EXT-STS:task_state'),
            'power_state': server.get('OS-EXT-STS:power_state'),
            'node': server.get('OS-EXT-SRV-ATTR:hypervisor_hostname'),
            'locked': bool(server.get('locked'))}


def instance_names(servers):
    """{server id: vmmig name}: the server's name where it is a good vmmig name that no
    other server has, else its ID (Nova's names need not be unique or tidy)."""
    counts = {}
    for server in servers:
        counts[server.get('name')] = counts.get(server.get('name'), 0) + 1
    return {s['id']: s['name'] if names.is_valid(s.get('name')) and counts[s['name']] == 1
            else s['id'] for s in servers}


def disks(server, shared_instances_storage):
    """The disks vmmig sees: the image-backed root and ephemeral disks on the hosts'
    instances storage, and every attached volume."""
    flavor = server.get('flavor') or {}
    where = storage.SHARED if shared_instances_storage else storage.LOCAL
    out = []
    # A server booted from a volume has no image ('' in the API): its root is a volume.
    if server.get('image'):
        out.append({'name': 'root', 'size_gb': flavor.get('disk') or 0, 'location': where})
    if flavor.get('ephemeral'):
        out.append({'name': 'ephemeral', 'size_gb': flavor['ephemeral'], 'location': where})
    for volume in server.get('os-extended-volumes:volumes_attached') or []:
        out.append({'name': volume['id'], 'size_gb': 0, 'location': storage.VOLUME,
                    'volume': volume['id']})
    return out


def instance(server, name, shared_instances_storage=False):
    """The instance spec of a server (vmmig.hypervisor.base's instance dict)."""
    flavor = server.get('flavor') or {}
    found = disks(server, shared_instances_storage)
    return {
        'name': name, 'uuid': server['id'], 'host': host_of(server),
        'vcpus': flavor.get('vcpus') or 0, 'memory_mb': flavor.get('ram') or 0,
        'power_state': power_state(server),
        'storage_mode': storage.storage_mode_of(found), 'disks': found,
        'flavor': flavor.get('original_name'),
        'nova': nova_state(server),
    }


def host(service, hypervisors, shared_instances_storage=False):
    """(state, facts) of the host of a nova-compute service, with its hypervisors (one
    per node: figures are summed)."""
    name = service['host']
    forced = bool(service.get('forced_down'))
    up = service.get('state') == 'up' and not forced
    facts = {'host': name, 'hypervisor': 'nova',
             'shared_storage': SHARED_STORAGE if shared_instances_storage else None}
    for key, column in (('vcpus', 'vcpus'), ('vcpus_used', 'vcpus_used'),
                        ('memory_mb', 'memory_mb'), ('memory_mb_used', 'memory_mb_used'),
                        ('disk_gb', 'local_gb'), ('disk_gb_used', 'local_gb_used')):
        facts[key] = sum(h.get(column) or 0 for h in hypervisors)
    if hypervisors:
        first = hypervisors[0]
        cpu = first.get('cpu_info') or {}
        if isinstance(cpu, dict):
            facts.update(cpu_model=cpu.get('model'), cpu_vendor=cpu.get('vendor'),
                         cpu_features=sorted(cpu.get('features') or []))
        facts.update(hypervisor_type=first.get('hypervisor_type'),
                     hypervisor_version=first.get('hypervisor_version'))
    facts['nova'] = {'service_id': service.get('id'), 'status': service.get('status'),
                     'state': service.get('state'), 'forced_down': forced,
                     'disabled_reason': service.get('disabled_reason'),
                     'zone': service.get('zone'),
                     'nodes': sorted(h.get('hypervisor_hostname') or '' for h in hypervisors)}
    if not up:
        facts['down_reason'] = ('nova-compute on %s is %s in Nova' % (
            name, 'forced down' if forced else 'down'))
    if service.get('status') == 'disabled':
        facts['unavailable'] = 'nova-compute on %s is disabled in Nova%s' % (
            name, ': %s' % service['disabled_reason'] if service.get('disabled_reason')
            else '')
    return ('up' if up else 'down'), facts


def progress(migration):
    """The record's progress columns from a migration of the server-migrations API
    (memory and disk: totals, processed, remaining), those Nova filled in."""
    def both(kind):
        memory, disk = (migration.get('memory_%s_bytes' % kind),
                        migration.get('disk_%s_bytes' % kind))
        if memory is None and disk is None:
            return None
        return (memory or 0) + (disk or 0)

    values = {'bytes_total': both('total'), 'bytes_processed': both('processed'),
              'bytes_remaining': both('remaining'),
              'disk_total': migration.get('disk_total_bytes'),
              'disk_remaining': migration.get('disk_remaining_bytes')}
    return {k: v for k, v in values.items() if v is not None}


def newest(migrations, migration_type, after_id=None, source=None):
    """The newest of Nova's migrations of ``migration_type`` (vmmig's word) with an id
    above ``after_id`` and from ``source``, or None."""
    kind = MIGRATION_TYPES[migration_type]
    mine = [m for m in migrations if m.get('migration_type') == kind
            and (after_id is None or m['id'] > after_id)
            and (source is None or m.get('source_compute') == source)]
    return max(mine, key=lambda m: m['id']) if mine else None


def action_failure(action):
    """Why an instance action (with its events, 2.84) failed, in Nova's words, or None."""
    if action is None:
        return None
    failed = [e for e in action.get('events') or [] if e.get('result') == 'Error']
    if not failed and not action.get('message'):
        return None
    words = []
    for event in failed:
        detail = event.get('details')
        words.append('%s: %s' % (event.get('event'), detail) if detail else event.get('event'))
    if action.get('message') and action['message'] != 'Error':
        words.append(action['message'])
    return '; '.join(w for w in words if w) or 'the action failed'


def server_line(server):
    """Nova's view of a server in a few words, for a record's reason."""
    return 'Nova shows it on %s, status %s, task state %s' % (
        host_of(server), server.get('status'), server.get('OS-EXT-STS:task_state'))
