"""The simulated cluster file: one schema, and a refusal names the key that is wrong;
devices, vGPUs and capabilities a host may carry."""

import json
import os

import pytest

from tests.unit import cli as cli_tests
from vmmig.cmd import cli
from vmmig import exception
from vmmig.hypervisor.sim import cluster


def _vm(**extra):
    spec = {'host': 'a', 'vcpus': 2, 'memory_mb': 2048,
            'disks': [{'name': 'vda', 'size_gb': 10, 'location': 'shared'}]}
    spec.update(extra)
    return spec


def _text(instances=None, hosts=None):
    return json.dumps({'hosts': hosts or {'a': {'vcpus': 8}, 'b': {}},
                       'instances': instances or {'web-1': _vm()}})


MALFORMED = [
    ('ha-priority', _text({'web-1': _vm(ha={'priority': 'high'})}),
     'instances.web-1.ha.priority: must be a whole number, not "high"'),
    ('ha-unknown-key', _text({'web-1': _vm(ha={'enabled': True, 'prio': 3})}),
     'instances.web-1.ha.prio: unknown key'),
    ('top-level-list', '[{"hosts": {}}]', 'the top level must be an object'),
    ('no-hosts', '{"instances": {}}', 'hosts: must be a non-empty object'),
    ('host-not-object', '{"hosts": {"a": 3}}', 'hosts.a: must be an object, not 3'),
    ('host-negative-ram', _text(hosts={'a': {'memory_mb': -1}}),
     'hosts.a.memory_mb: must be a whole number >= 1, not -1'),
    ('host-link', _text(hosts={'a': {'link_gbps': 0}}), 'hosts.a.link_gbps: must be a number > 0'),
    ('host-unknown-key', _text(hosts={'a': {'vcpu': 4}}), 'hosts.a.vcpu: unknown key'),
    ('host-empty-name', _text(hosts={'': {}, 'a': {}}), 'hosts.: a name must not be blank'),
    ('host-path', _text(hosts={'../../x': {}, 'a': {}}),
     'hosts.../../x: a name must not contain "/"'),
    ('vm-path', _text({'../../escaped': _vm()}),
     'instances.../../escaped: a name must not contain "/"'),
    ('vm-dots', _text({'..': _vm()}), "instances...: a name must not start with '.'"),
    ('disk-path', _text({'web-1': _vm(disks=[{'name': '../../../x', 'size_gb': 1,
                                              'location': 'local'}])}),
     'instances.web-1.disks.0.name: must be a name (1 to 255 characters'),
    ('volume-option', _text({'web-1': _vm(disks=[{'name': 'vda', 'size_gb': 1,
                                                  'location': 'volume', 'volume': '-x'}])}),
     'instances.web-1.disks.0.volume: must be a name'),
    ('shared-storage-path', _text(hosts={'a': {'shared_storage': '../../..'}}),
     'hosts.a.shared_storage: must be a name'),
    ('duplicate-host', '{"hosts": {"a": {}, "a": {"vcpus": 2}}}', 'hosts.a: given more than once'),
    ('duplicate-vm', '{"hosts": {"a": {}}, "instances": {"v": {"host": "a"}, '
                     '"v": {"host": "a"}}}', 'instances.v: given more than once'),
    ('vcpus-lots', _text({'web-1': _vm(vcpus='lots')}),
     'instances.web-1.vcpus: must be a whole number >= 1, not "lots"'),
    ('vcpus-negative', _text({'web-1': _vm(vcpus=-2)}), 'instances.web-1.vcpus'),
    ('vcpus-true', _text({'web-1': _vm(vcpus=True)}), 'instances.web-1.vcpus'),
    ('ram-negative', _text({'web-1': _vm(memory_mb=-512)}), 'instances.web-1.memory_mb'),
    ('disks-string', _text({'web-1': _vm(disks='vda')}),
     'instances.web-1.disks: must be a list of disks, not "vda"'),
    ('disk-location', _text({'web-1': _vm(disks=[{'name': 'vda', 'size_gb': 1,
                                                  'location': 'nas'}])}),
     'instances.web-1.disks.0.location: must be one of local, shared, volume'),
    ('disk-size', _text({'web-1': _vm(disks=[{'name': 'vda', 'size_gb': -1,
                                              'location': 'local'}])}),
     'instances.web-1.disks.0.size_gb'),
    ('volume-without-id', _text({'web-1': _vm(disks=[{'name': 'vda', 'size_gb': 1,
                                                      'location': 'volume'}])}),
     'instances.web-1.disks.0.volume: missing'),
    ('power-state', _text({'web-1': _vm(power_state='asleep')}),
     'instances.web-1.power_state: must be one of running, paused, suspended, shutoff'),
    ('unknown-host', _text({'web-1': _vm(host='nowhere')}),
     'instances.web-1.host: nowhere is not one of the hosts'),
    ('no-host', _text({'web-1': {'vcpus': 1}}), 'instances.web-1.host: missing'),
    ('workload', _text({'web-1': _vm(workload={'dirty_rate_mbps': 'fast'})}),
     'instances.web-1.workload.dirty_rate_mbps'),
    ('vm-unknown-key', _text({'web-1': _vm(ram=4)}), 'instances.web-1.ram: unknown key'),
    ('instances-list', '{"hosts": {"a": {}}, "instances": []}',
     'instances: must be an object of instances'),
    ('not-json', '{"hosts": ', 'is not valid JSON'),
]


@pytest.mark.parametrize('text,fragment', [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_a_malformed_cluster_is_refused_naming_the_key(tmp_path, text, fragment):
    path = tmp_path / 'cluster.json'
    path.write_text(text)
    with pytest.raises(exception.InvalidOption) as err:
        cluster.load(str(path))
    assert '[sim] cluster_file' in str(err.value)
    assert fragment in str(err.value)


def test_every_problem_is_listed():
    with pytest.raises(exception.InvalidOption) as err:
        cluster.normalise({'hosts': {'a': {'vcpus': 0}},
                           'instances': {'v': _vm(memory_mb='big', host='z')}})
    for fragment in ('hosts.a.vcpus', 'instances.v.memory_mb', 'instances.v.host'):
        assert fragment in str(err.value)


def test_the_demo_cluster_and_the_defaults_are_accepted():
    spec = cluster.load()
    assert spec['instances']['web-1']['host'] == 'sim-a'
    spec = cluster.normalise(json.loads(_text({'web-1': {'host': 'a'}})))
    assert spec['instances']['web-1']['power_state'] == 'running'
    assert spec['hosts']['b']['vcpus'] == cluster.HOST_DEFAULTS['vcpus']


def test_a_bad_cluster_file_writes_nothing(tmp_path):
    path = tmp_path / 'cluster.json'
    path.write_text(_text({'web-1': _vm(vcpus='lots')}))
    result = cli_tests.run(['host', 'list'], cli_tests.FakeConductor(), tmp_path,
                           config='[DEFAULT]\nembedded = true\n'
                                  '[sim]\ncluster_file = %s\n' % path,
                           services=cli._embedded_services)
    assert result.code == 1
    assert 'instances.web-1.vcpus' in result.stderr
    # The state directory is there (the configuration was good); nothing is in it.
    assert os.listdir(tmp_path / 'state') == []


HOSTILE = [
    ('vm', {'../../../../escaped-vm': _vm(
        disks=[{'name': 'vda', 'size_gb': 1, 'location': 'local'}],
        power_state='suspended')}, {}),
    ('disk', {'web-1': _vm(disks=[{'name': '../../../../../../escaped-disk', 'size_gb': 1,
                                   'location': 'local'}])}, {}),
    ('shared', None, {'a': {'shared_storage': '../../../escaped-shared'}, 'b': {}}),
]


@pytest.mark.parametrize('instances,hosts', [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])
def test_a_hostile_cluster_file_writes_nothing_outside_the_state_dir(tmp_path, instances,
                                                                     hosts):
    # ``host list`` alone starts every simulated host, which made its VMs' files.
    top = tmp_path / 'top'
    top.mkdir()
    path = tmp_path / 'cluster.json'
    path.write_text(_text(instances, hosts))
    before = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*')]
    result = cli_tests.run(['host', 'list'], cli_tests.FakeConductor(), top,
                           config='[DEFAULT]\nembedded = true\n'
                                  '[sim]\ncluster_file = %s\n' % path,
                           services=cli._embedded_services)
    outside = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*')
                     if not p.is_relative_to(top / 'state'))
    assert outside == sorted(before + ['top/vmmig.conf'])
    assert result.code == 1
    assert 'escaped' in result.stderr


# Devices, vGPUs, capabilities ----------------------------------------------------
GPU = {'address': '0000:3b:00.0', 'product': '10de:1db6'}


def _cluster(host=None, **instance):
    data = {'hosts': {'a': dict(host or {})}}
    if instance:
        others = instance.pop('others', {})
        data['instances'] = {'vm': dict(instance, host='a'), **others}
    return data


def test_a_device_given_by_its_address_gets_the_defaults():
    hosts = cluster.normalise(_cluster({'pci_devices': ['0000:3b:00.0']}))['hosts']
    assert hosts['a']['pci_devices'] == [{'address': '0000:3b:00.0', 'type': 'pci',
                                          'product': None, 'assignable': True}]


def test_a_device_gets_its_defaults():
    hosts = cluster.normalise(_cluster({'pci_devices': [GPU]}))['hosts']
    assert hosts['a']['pci_devices'] == [dict(GPU, type='pci', assignable=True)]
    assert hosts['a']['vgpus'] == {} and hosts['a']['capabilities'] == {}


def test_the_demo_cluster_loads():
    spec = cluster.load()
    assert spec['instances']['gpu-1']['pci_devices'] == ['0000:3b:00.0']


@pytest.mark.parametrize('data,fragment', [
    (_cluster({'pci_devices': [{'product': '10de:1db6'}]}),
     'hosts.a.pci_devices: must be a list of device addresses or objects with an "address"'),
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
