"""The simulated cluster an operator writes: hosts and the VMs on them.

A JSON file::

    {"hosts": {"NAME": {"vcpus": 32, "memory_mb": 65536, "disk_gb": 1000,
                        "cpu_model": "Skylake-Server", "cpu_vendor": "Intel",
                        "cpu_features": ["sse4.2", "avx2"], "os_version": "Debian 12",
                        "hypervisor_version": "7.2.0", "cluster": "c1",
                        "link_gbps": 10, "shared_storage": "nfs1",
                        "pci_devices": [{"address": "0000:3b:00.0", "type": "pci"}]}},
     "instances": {"NAME": {"host": "HOST", "vcpus": 2, "memory_mb": 2048,
                            "power_state": "running",
                            "disks": [{"name": "vda", "size_gb": 20, "location": "shared"}],
                            "pci_devices": [], "vgpus": [],
                            "cpu_features": [],
                            "workload": {"dirty_rate_mbps": 40, "wws_mb": 256,
                                         "link_loss_at": null, "ignores_acpi": false}}}}
"""

import hashlib
import os

from vmmig import exception
from vmmig.hypervisor.sim import schema

HOST_DEFAULTS = {
    'vcpus': 16, 'memory_mb': 32768, 'disk_gb': 500, 'cpu_model': 'Skylake-Server',
    'cpu_vendor': 'Intel', 'cpu_features': [], 'os_version': 'Debian 12',
    'hypervisor_type': 'QEMU', 'hypervisor_version': '7.2.0', 'cluster': 'default',
    'link_gbps': 10.0, 'shared_storage': None, 'pci_devices': [],
}
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
    problems = schema.check(data, host_extra=HOST_DEFAULTS, instance_extra=INSTANCE_DEFAULTS)
    if problems:
        raise exception.InvalidOption(option='[sim] cluster_file', value=path,
                                      reason='; '.join(problems))
    hosts = {name: dict(HOST_DEFAULTS, **spec, host=name)
             for name, spec in data['hosts'].items()}
    instances = {}
    for name, spec in (data.get('instances') or {}).items():
        spec = dict(INSTANCE_DEFAULTS, **spec, name=name)
        # From a digest, not hash(): every agent process must give a VM the same uuid.
        spec.setdefault('uuid', '00000000-0000-4000-8000-%s'
                        % hashlib.sha256(name.encode()).hexdigest()[:12])
        instances[name] = spec
    return {'hosts': hosts, 'instances': instances}
