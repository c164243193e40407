"""The simulated cluster file: devices, vGPUs and capabilities a host may carry."""

import pytest

from vmmig import exception
from vmmig.hypervisor.sim import cluster

GPU = {'address': '0000:3b:00.0', 'product': '10de:1db6'}


def _cluster(host=None, **instance):
    data = {'hosts': {'a': dict(host or {})}}
    if instance:
        data['instances'] = {'vm': dict(instance, host='a'),
                             **instance.pop('others', {})}
    return data


def test_a_device_gets_its_defaults():
    hosts = cluster.normalise(_cluster({'pci_devices': [GPU]}))['hosts']
    assert hosts['a']['pci_devices'] == [dict(GPU, type='pci', assignable=True)]
    assert hosts['a']['vgpus'] == {} and hosts['a']['capabilities'] == {}


def test_the_demo_cluster_loads():
    spec = cluster.load()
    assert spec['instances']['gpu-1']['pci_devices'] == ['0000:3b:00.0']


@pytest.mark.parametrize('data,fragment', [
    (_cluster({'pci_devices': ['0000:3b:00.0']}), 'must be an object with an "address"'),
    (_cluster({}, pci_devices=['0000:3b:00.0']),
     "instance vm has PCI device '0000:3b:00.0', which its host a does not have"),
    (_cluster({'pci_devices': [GPU]}, pci_devices=['0000:3b:00.0'],
              others={'vm2': {'host': 'a', 'pci_devices': ['0000:3b:00.0']}}),
     'PCI device 0000:3b:00.0 of host a is given to both vm and vm2'),
    (_cluster({'vgpus': ['nvidia-63']}), '"vgpus" of host a must map each vGPU type'),
    (_cluster({}, vgpus=['nvidia-63']),
     "instance vm has a vGPU of type 'nvidia-63', which its host a does not offer"),
    (_cluster({'vgpus': {'nvidia-63': 1}}, vgpus=['nvidia-63', 'nvidia-63']),
     'host a offers 1 vGPU(s) of type nvidia-63 and its instances have 2'),
    (_cluster({'capabilities': {'teleport': True}}),
     "capability 'teleport' of host a: possible are announce, auto_converge, "
     "block_migration, live_migration, post_copy, each true or false"),
    (_cluster({'capabilities': {'post_copy': 'no'}}), "capability 'post_copy' of host a"),
], ids=['device-not-object', 'unknown-device', 'device-twice', 'vgpus-not-map',
        'vgpu-not-offered', 'vgpus-over', 'unknown-capability', 'capability-not-bool'])
def test_bad_cluster_files_are_refused_with_the_reason(data, fragment):
    with pytest.raises(exception.InvalidOption) as err:
        cluster.normalise(data)
    assert fragment in str(err.value)
    assert '[sim] cluster_file' in str(err.value)
