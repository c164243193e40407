"""The simulated cluster an operator writes: hosts and the VMs on them.

A JSON file::

    {"hosts": {"NAME": {"vcpus": 32, "memory_mb": 65536, "disk_gb": 1000,
                        "cpu_model": "Skylake-Server", "cpu_vendor": "Intel",
                        "cpu_features": ["sse4.2", "avx2"], "os_version": "Debian 12",
                        "hypervisor_version": "7.2.0", "cluster": "c1",
                        "link_gbps": 10, "shared_storage": "nfs1",
                        "pci_devices": [{"address": "0000:3b:00.0", "type": "pci",
                                         "product": "10de:1db6", "assignable": true}],
                        "vgpus": {"nvidia-63": 4},
                        "capabilities": {"post_copy": false}}},
     "instances": {"NAME": {"host": "HOST", "vcpus": 2, "memory_mb": 2048,
                            "power_state": "running",
                            "disks": [{"name": "vda", "size_gb": 20, "location": "shared"}],
                            "pci_devices": ["0000:3b:00.0"], "vgpus": ["nvidia-63"],
                            "cpu_features": [],
                            "workload": {"dirty_rate_mbps": 40, "wws_mb": 256,
                                         "link_loss_at": null, "ignores_acpi": false}}}}

A host's ``pci_devices`` are the devices it can pass through, each of a kind
("product", its vendor:product id); an instance's ``pci_devices`` name devices of
its host, no device given to two VMs. ``vgpus`` is how many vGPUs of each type a
host can give. ``capabilities`` takes from the simulated hypervisor what it
otherwise supports (see HypervisorDriver.capabilities).
"""

import hashlib
import os

from vmmig import exception
from vmmig.hypervisor import base
from vmmig.hypervisor.sim import schema

HOST_DEFAULTS = {
    'vcpus': 16, 'memory_mb': 32768, 'disk_gb': 500, 'cpu_model': 'Skylake-Server',
    'cpu_vendor': 'Intel', 'cpu_features': [], 'os_version': 'Debian 12',
    'hypervisor_type': 'QEMU', 'hypervisor_version': '7.2.0', 'cluster': 'default',
    'link_gbps': 10.0, 'shared_storage': None, 'pci_devices': [], 'vgpus': {},
    'capabilities': {},
}
PCI_DEVICE_DEFAULTS = {'type': 'pci', 'product': None, 'assignable': True}
INSTANCE_DEFAULTS = {
    'vcpus': 1, 'memory_mb': 1024, 'power_state': 'running', 'disks': [],
    'pci_devices': [], 'vgpus': [], 'cpu_features': [],
    'workload': {'dirty_rate_mbps': 10, 'wws_mb': 64},
}
POWER_STATES = schema.POWER_STATES

DEMO_CLUSTER = os.path.join(os.path.dirname(__file__), 'demo_cluster.json')


def load(path=None):
    path = path or DEMO_CLUSTER
    try:
        with open(path) as f:
            data = schema.load_json(f)
    except OSError as e:
        raise exception.InvalidOption(option='[sim] cluster_file', value=path,
                                      reason='cannot be read (%s)' % e.strerror)
    except ValueError as e:
        raise exception.InvalidOption(option='[sim] cluster_file', value=path,
                                      reason='is not valid JSON (%s)' % e)
    return normalise(data, path)


def normalise(data, path='<cluster>'):
    """The cluster with every default filled in; InvalidOption lists each wrong key."""
    def bad(reason):
        return exception.InvalidOption(option='[sim] cluster_file', value=path, reason=reason)

    problems = schema.check(data, host_extra=HOST_DEFAULTS, instance_extra=INSTANCE_DEFAULTS)
    if problems:
        raise bad('; '.join(problems))
    hosts = {name: dict(HOST_DEFAULTS, **spec, host=name)
             for name, spec in data['hosts'].items()}
    for name, host in hosts.items():
        _check_host(name, host, bad)
    holders = {}  # (host, device address) -> instance
    instances = {}
    for name, spec in (data.get('instances') or {}).items():
        spec = dict(INSTANCE_DEFAULTS, **spec, name=name)
        host = hosts[spec['host']]
        devices = {d['address'] for d in host['pci_devices']}
        for address in spec['pci_devices']:
            if address not in devices:
                raise bad('instance %s has PCI device %r, which its host %s does not have'
                          % (name, address, spec['host']))
            holder = holders.setdefault((spec['host'], address), name)
            if holder != name:
                raise bad('PCI device %s of host %s is given to both %s and %s'
                          % (address, spec['host'], holder, name))
        for vtype in spec['vgpus']:
            if vtype not in host['vgpus']:
                raise bad('instance %s has a vGPU of type %r, which its host %s does not '
                          'offer' % (name, vtype, spec['host']))
        # From a digest, not hash(): every agent process must give a VM the same uuid.
        spec.setdefault('uuid', '00000000-0000-4000-8000-%s'
                        % hashlib.sha256(name.encode()).hexdigest()[:12])
        instances[name] = spec
    for name, host in hosts.items():
        for vtype, count in host['vgpus'].items():
            used = sum(i['vgpus'].count(vtype) for i in instances.values()
                       if i['host'] == name)
            if used > count:
                raise bad('host %s offers %d vGPU(s) of type %s and its instances have %d'
                          % (name, count, vtype, used))
    return {'hosts': hosts, 'instances': instances}


def _check_host(name, host, bad):
    devices = []
    for device in host['pci_devices']:
        if isinstance(device, str):
            device = {'address': device}  # the schema lets a device be its address
        if not isinstance(device, dict) or not device.get('address'):
            raise bad('PCI device %r of host %s must be an object with an "address"'
                      % (device, name))
        devices.append(dict(PCI_DEVICE_DEFAULTS, **device))
    host['pci_devices'] = devices
    if not isinstance(host['vgpus'], dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0
            for n in host['vgpus'].values()):
        raise bad('"vgpus" of host %s must map each vGPU type to how many it offers'
                  % name)
    # The capabilities a driver may have: those the contract names.
    known = base.HypervisorDriver.capabilities
    for capability, value in host['capabilities'].items():
        if capability not in known or not isinstance(value, bool):
            raise bad('capability %r of host %s: possible are %s, each true or false'
                      % (capability, name, ', '.join(sorted(known))))
