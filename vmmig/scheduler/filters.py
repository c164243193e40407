"""Host filters: each says why a host cannot take a VM, in words an operator reads.

A filter returns ``None`` when the host passes, or a reason. The request is::

    {'instance': instance dict, 'migration_type': 'cold'|'live'|'evacuate',
     'migration': the MigrationType driver,
     'source': source host facts (may be {} for a dead host),
     'storage': the StorageMode driver,
     'capabilities': {hypervisor capability: why the request needs it}}

and a host is ``{'name', 'state', 'maintenance', 'facts'}``. The request may
also hold ``'inbound'``: what db.api.inbound() returns, the room of migrations on
their way to each host that its facts do not show yet.
"""

import collections
import re

from vmmig import conf
from vmmig.conf import scheduler as scheduler_opts

CONF = conf.CONF


class BaseHostFilter(object):
    """Subclasses implement ``reason(host, request)``."""

    def reason(self, host, request):
        raise NotImplementedError


class ComputeFilter(BaseHostFilter):
    """Up and not in maintenance. A backend that reads the hosts' state from elsewhere
    says in the facts why one is down (``down_reason``) or takes no VM although up
    (``unavailable``: a compute service disabled in Nova)."""

    def reason(self, host, request):
        facts = host.get('facts') or {}
        if host['state'] != 'up':
            return 'host %s is down (%s)' % (host['name'], facts.get('down_reason')
                                             or 'no heartbeat from its agent')
        if host['maintenance']:
            return 'host %s is in maintenance%s' % (
                host['name'], (': ' + host['maintenance_reason'])
                if host.get('maintenance_reason') else '')
        return facts.get('unavailable')


class ReservedHostFilter(BaseHostFilter):
    """The spare hosts of [ha] reserved_hosts take only the VMs of failed hosts."""

    def reason(self, host, request):
        if host['name'] in CONF.ha.reserved_hosts and request['migration_type'] != 'evacuate':
            return ('host %s is reserved for the VMs of failed hosts ([ha] reserved_hosts)'
                    % host['name'])
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


# The distribution's name, then its version: "Ubuntu 22.04.4 LTS", "Debian GNU/Linux 12
# (bookworm)", "Debian 12". Something else (a kernel's platform string) is compared whole.
_OS_VERSION = re.compile(r'^(?P<dist>[^\d\s][^\d]*?)\s+v?(?P<number>\d+(?:\.\d+)*)(?=$|[\s(,])')


OsRelease = collections.namedtuple('OsRelease', 'distribution numbers text')


def os_release(os_version):
    """OsRelease(distribution, numbers, text) of an OS version, or None if unreadable.

    The release is the first two numbers of the version (22.04 of Ubuntu 22.04.4, 12 of
    Debian 12): point releases of one release run the same QEMU/KVM generation. The
    distribution is compared without case and without a trailing "GNU/Linux" or
    "Linux", which os-release adds to some names and not to others.
    """
    match = _OS_VERSION.match((os_version or '').strip())
    if not match:
        return None
    dist = ' '.join(match.group('dist').casefold().split())
    dist = re.sub(r'\s*(gnu/linux|linux)$', '', dist) or dist
    text = match.group('number').split('.')[:2]
    return OsRelease(dist, tuple(int(n) for n in text), '.'.join(text))


def os_release_reason(host, dest_version, source_version, moves):
    """Why a VM on ``source_version`` may not move to ``host`` on ``dest_version``, or None.

    ``moves``: [scheduler] os_release_moves.
    """
    said = 'OS version of %s is %s, the source has %s' % (host, dest_version, source_version)
    src, dst = os_release(source_version), os_release(dest_version)
    if src is None or dst is None:
        if dest_version == source_version:
            return None
        return '%s (compared whole: %s has no release number vmmig can read)' % (
            said, ' and '.join(repr(v) for v, r in ((dest_version, dst), (source_version, src))
                               if r is None))
    if src[:2] == dst[:2]:
        return None
    if src.distribution != dst.distribution:
        return '%s: another distribution' % said
    new, old = dst.text, src.text
    if dst.numbers < src.numbers:
        return ('%s: release %s is older than %s, and a VM never moves to an older release '
                '(a guest started under a newer QEMU/KVM may use what an older one lacks), '
                'whatever [scheduler] os_release_moves says' % (said, new, old))
    if moves == scheduler_opts.TO_NEWER_RELEASE:
        return None
    return ('%s: release %s is newer than %s; [scheduler] os_release_moves = %s allows '
            'such moves (an OS upgrade of the cluster)'
            % (said, new, old, scheduler_opts.TO_NEWER_RELEASE))


class OsVersionFilter(BaseHostFilter):
    """Same distribution and release; older to newer too when the operator allows it."""

    def __init__(self):
        self.moves = CONF.scheduler.os_release_moves

    def reason(self, host, request):
        src = request['source']
        if not src or 'os_version' not in src:
            return None
        return os_release_reason(host['name'], host['facts'].get('os_version'),
                                 src['os_version'], self.moves)


class HypervisorVersionFilter(_SameFactFilter):
    fact = 'hypervisor_version'
    label = 'hypervisor (QEMU) version'


class SameClusterFilter(_SameFactFilter):
    fact = 'cluster'
    label = 'cluster'


def free_pci_devices(facts):
    """The passthrough devices of a host (its facts) that no VM holds and that can be
    given to one."""
    return [d for d in facts.get('pci_devices') or []
            if d.get('type', 'pci') == 'pci' and d.get('assignable', True)
            and not d.get('instance')]


class PciPassthroughFilter(BaseHostFilter):
    """A passthrough device cannot follow a running guest; a VM defined afresh on the
    destination (cold) is given a free device of the same kind there.

    Only that one is free is checked here: the destination's agent chooses the device
    when it defines the VM.
    """

    def reason(self, host, request):
        instance = request['instance']
        devices = instance.get('pci_devices') or []
        if not devices:
            return None
        mtype = request.get('migration')
        if mtype is None or not mtype.reassigns_pci_devices:
            return ('the VM has PCI passthrough device(s) %s, which cannot move in a %s '
                    'migration (a cold migration gives it a free device of the same kind '
                    'on the destination)' % (', '.join(devices), request['migration_type']))
        kinds = instance.get('pci_products') or {}
        unknown = [a for a in devices if not kinds.get(a)]
        if unknown:
            return ('the kind (vendor:product id) of PCI passthrough device(s) %s of the '
                    'VM is not known, so no device of %s can be matched to it'
                    % (', '.join(unknown), host['name']))
        needed = collections.Counter(kinds[a] for a in devices)
        free = collections.Counter(d.get('product') for d in free_pci_devices(host['facts']))
        problems = ['%d free of kind %s, %d needed' % (free[kind], kind, count)
                    for kind, count in sorted(needed.items()) if free[kind] < count]
        if problems:
            return '%s has no free PCI passthrough device for %s of the VM: %s' % (
                host['name'], ', '.join(devices), ', '.join(problems))
        return None


class VgpuFilter(BaseHostFilter):
    """A VM with vGPUs goes only where its vGPU types are offered, with one free each."""

    def reason(self, host, request):
        needed = collections.Counter(request['instance'].get('vgpus') or [])
        offered = host['facts'].get('vgpus') or {}
        problems = []
        for vtype, count in sorted(needed.items()):
            if vtype not in offered:
                problems.append('offers no vGPU of type %s' % vtype)
            elif offered[vtype].get('free', 0) < count:
                problems.append('has %d free vGPU(s) of type %s, %d needed'
                                % (offered[vtype].get('free', 0), vtype, count))
        if problems:
            return '%s %s' % (host['name'], '; '.join(problems))
        return None


def missing_capabilities(host, facts, needed):
    """Reasons the hypervisor of ``host`` (its facts) lacks what a request ``needed``
    ({capability: why}).

    An agent older than the capabilities in the facts reports none: its driver is not
    judged on what it did not say.
    """
    capabilities = facts.get('capabilities')
    if capabilities is None:
        return []
    return ['the hypervisor of %s lacks the capability %s, which the migration needs for %s'
            % (host, capability, why) for capability, why in sorted(needed.items())
            if not capabilities.get(capability)]


class HypervisorCapabilitiesFilter(BaseHostFilter):
    """The destination's hypervisor can do what the request needs (the source's is
    checked once per request by the prechecks)."""

    def reason(self, host, request):
        reasons = missing_capabilities(host['name'], host['facts'],
                                       request.get('capabilities') or {})
        return '; '.join(reasons) if reasons else None


class StorageFilter(BaseHostFilter):
    def reason(self, host, request):
        storage = request['storage']
        src = request['source'] or {'host': request['instance'].get('host'),
                                    'shared_storage': request.get('source_shared_storage')}
        reasons = storage.host_reasons(request['instance'], src,
                                       dict(host['facts'], host=host['name']))
        return '; '.join(reasons) if reasons else None
