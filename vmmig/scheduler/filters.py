"""Host filters: each says why a host cannot take a VM, in words an operator reads.

A filter returns ``None`` when the host passes, or a reason. The request is::

    {'instance': instance dict, 'migration_type': 'cold'|'live'|'evacuate',
     'source': source host facts (may be {} for a dead host),
     'storage': the StorageMode driver}

and a host is ``{'name', 'state', 'maintenance', 'facts'}``. The request may
also hold ``'inbound'``: what db.api.inbound() returns, the room of migrations on
their way to each host that its facts do not show yet.
"""

from vmmig import conf

CONF = conf.CONF


class BaseHostFilter(object):
    """Subclasses implement ``reason(host, request)``."""

    def reason(self, host, request):
        raise NotImplementedError


class ComputeFilter(BaseHostFilter):
    def reason(self, host, request):
        if host['state'] != 'up':
            return 'host %s is down (no heartbeat from its agent)' % host['name']
        if host['maintenance']:
            return 'host %s is in maintenance%s' % (
                host['name'], (': ' + host['maintenance_reason'])
                if host.get('maintenance_reason') else '')
        return None


class NotOwnHostFilter(BaseHostFilter):
    def reason(self, host, request):
        if host['name'] == request['instance'].get('host'):
            return '%s is the host the VM is on already' % host['name']
        return None


def footprint(instance):
    """The room ``instance`` takes on a host: vCPUs, RAM, local disk."""
    return {'vcpus': instance.get('vcpus', 0), 'memory_mb': instance.get('memory_mb', 0),
            'disk_gb': sum(d.get('size_gb', 0) for d in instance.get('disks', [])
                           if d['location'] == 'local')}


NOTHING_INBOUND = {'vcpus': 0, 'memory_mb': 0, 'disk_gb': 0, 'migrations': 0}


def inbound_to(host, request):
    return (request.get('inbound') or {}).get(host['name']) or NOTHING_INBOUND


class CapacityFilter(BaseHostFilter):
    def __init__(self):
        # Read once per request, not once per host: option look-ups are not free.
        sched = CONF.scheduler
        self.reserved_ram = sched.reserved_host_memory_mb
        self.cpu_ratio = sched.cpu_allocation_ratio
        self.reserved_vcpus = sched.reserved_host_vcpus
        self.reserved_disk = sched.reserved_host_disk_gb

    def reason(self, host, request):
        facts, need = host['facts'], footprint(request['instance'])
        # Migrations on their way there: the facts do not show them yet.
        coming = inbound_to(host, request)
        problems = []
        free_ram = (facts.get('memory_mb', 0) - facts.get('memory_mb_used', 0)
                    - self.reserved_ram - coming['memory_mb'])
        if need['memory_mb'] > free_ram:
            problems.append('%d MiB RAM free after the %d MiB reserved%s, %d MiB needed' % (
                free_ram, self.reserved_ram, _coming(coming, 'memory_mb', '%d MiB'),
                need['memory_mb']))
        vcpus = (facts.get('vcpus', 0) * self.cpu_ratio
                 - facts.get('vcpus_used', 0) - self.reserved_vcpus - coming['vcpus'])
        if need['vcpus'] > vcpus:
            problems.append('%d vCPUs free%s, %d needed' % (
                vcpus, _coming(coming, 'vcpus', '%d vCPUs', ' after'), need['vcpus']))
        free_disk = (facts.get('disk_gb', 0) - facts.get('disk_gb_used', 0)
                     - self.reserved_disk - coming['disk_gb'])
        if need['disk_gb'] > free_disk:
            problems.append('%d GiB local disk free%s, %d GiB needed' % (
                free_disk, _coming(coming, 'disk_gb', '%d GiB', ' after'), need['disk_gb']))
        if problems:
            return 'not enough room on %s: %s' % (host['name'], ', '.join(problems))
        return None


def _coming(coming, key, unit, joint=' and'):
    """The words for the room of migrations on their way, when they take some."""
    if not coming[key]:
        return ''
    return '%s the %s of %d migration(s) on their way there' % (
        joint, unit % coming[key], coming['migrations'])


class CpuModelFilter(BaseHostFilter):
    """A first cut from the facts; the destination agent checks the guest CPU itself."""

    def reason(self, host, request):
        src, dst = request['source'], host['facts']
        if not src:
            return None
        if src.get('cpu_vendor') != dst.get('cpu_vendor'):
            return 'CPU vendor of %s is %s, the VM runs on %s' % (
                host['name'], dst.get('cpu_vendor'), src.get('cpu_vendor'))
        if request['migration_type'] != 'live':
            return None
        needed = set(request['instance'].get('cpu_features') or src.get('cpu_features') or [])
        missing = sorted(needed - set(dst.get('cpu_features') or []))
        if missing:
            return 'CPU of %s lacks %s, which the running guest may use' % (
                host['name'], ', '.join(missing))
        return None


class _SameFactFilter(BaseHostFilter):
    fact = None
    label = None

    def reason(self, host, request):
        src = request['source']
        if not src or self.fact not in src:
            return None
        if src[self.fact] != host['facts'].get(self.fact):
            return '%s of %s is %s, the source has %s' % (
                self.label, host['name'], host['facts'].get(self.fact), src[self.fact])
        return None


class OsVersionFilter(_SameFactFilter):
    fact = 'os_version'
    label = 'OS version'


class HypervisorVersionFilter(_SameFactFilter):
    fact = 'hypervisor_version'
    label = 'hypervisor (QEMU) version'


class SameClusterFilter(_SameFactFilter):
    fact = 'cluster'
    label = 'cluster'


class PciPassthroughFilter(BaseHostFilter):
    """PCI passthrough pins a VM to its device; mediated vGPUs move with it."""

    def reason(self, host, request):
        devices = request['instance'].get('pci_devices') or []
        if devices:
            return 'the VM has PCI passthrough device(s) %s, which cannot move' % (
                ', '.join(devices))
        return None


class StorageFilter(BaseHostFilter):
    def reason(self, host, request):
        storage = request['storage']
        src = request['source'] or {'host': request['instance'].get('host'),
                                    'shared_storage': request.get('source_shared_storage')}
        reasons = storage.host_reasons(request['instance'], src,
                                       dict(host['facts'], host=host['name']))
        return '; '.join(reasons) if reasons else None
