"""A received VM's files are written only where the receiving agent builds their paths:
under its own storage, from checked names, whatever names and paths the caller sent."""

import oslo_messaging as messaging
import pytest

from tests import fixtures as vfix
from vmmig.agent import manager
from vmmig.agent import transfer
from vmmig import conf
from vmmig import exception
from vmmig.hypervisor.libvirt import driver as libvirt_driver
from vmmig.hypervisor.sim import driver as sim_driver

CONF = conf.CONF


@pytest.fixture
def top(tmp_path):
    fixture = vfix.ConfFixture(state_path=str(tmp_path / 'state'))
    fixture.setUp()
    yield tmp_path
    fixture.cleanUp()


def _outside(top):
    return sorted(str(p.relative_to(top)) for p in top.rglob('*')
                  if not p.is_relative_to(top / 'state') and not p.is_relative_to(top / 'src'))


def _offer(top, files):
    src = top / 'src'
    src.mkdir(exist_ok=True)
    specs = []
    for file_id, kind in files:
        path = src / file_id.replace(':', '_').replace('/', '_')
        path.write_bytes(b'payload')
        specs.append({'id': file_id, 'path': str(path), 'kind': kind, 'size': 7})
    return transfer.Offer(specs, '127.0.0.1')


HOSTILE = [
    ('vm-name', {'name': '../../../../escaped', 'power_state': 'shutoff',
                 'disks': [{'name': 'vda', 'location': 'local', 'size_gb': 1}]},
     [('disk:vda', 'disk')]),
    ('saved-state', {'name': '../../../../escaped', 'power_state': 'suspended', 'disks': []},
     [('saved_state', 'saved_state')]),
    ('file-not-a-disk', {'name': 'web-9', 'power_state': 'shutoff', 'disks': []},
     [('disk:../../../../../escaped', 'disk')]),
]


@pytest.mark.parametrize('instance,files', [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])
def test_a_hostile_receive_instance_writes_nothing_outside(top, instance, files):
    driver = sim_driver.SimDriver(CONF, 'sim-b')
    driver.init_host()
    agent = manager.AgentManager('sim-b', driver)
    offer = _offer(top, files)
    try:
        # Refused at the RPC boundary (the endpoint's declared arguments, or the
        # agent's check of the files against the VM), as vmmig's own error.
        with pytest.raises(messaging.ExpectedException) as refused:
            agent.receive_instance({}, instance, offer.describe())
        assert isinstance(refused.value.exc_info[1], exception.Invalid)
        # And behind it: the driver builds no path from such names either.
        with pytest.raises(exception.Invalid):
            driver.cold_import_paths(instance, offer.describe()['files'])
    finally:
        offer.close()
    assert _outside(top) == []
    assert 'web-9' not in [i['name'] for i in driver.list_instances()]


def _libvirt(top):
    local = top / 'state' / 'local'
    local.mkdir(parents=True)
    CONF.set_override('local_storage_path', str(local), group='libvirt')
    return libvirt_driver.LibvirtDriver(CONF, 'host1'), local


@pytest.mark.parametrize('path', ['/elsewhere/escaped.qcow2', '/src/local/../../escaped',
                                  '/src/local/-o.qcow2'])
def test_libvirt_refuses_a_disk_path_outside_the_source_storage(top, path):
    driver, _local = _libvirt(top)
    instance = {'name': 'web-9', 'local_storage_path': '/src/local',
                'disks': [{'name': 'vda', 'location': 'local', 'path': path}]}
    with pytest.raises(exception.Invalid):
        driver.cold_import_paths(instance, [{'id': 'disk:vda', 'kind': 'disk'}])


def test_libvirt_moves_a_disk_and_the_saved_state_under_its_storage(top):
    driver, local = _libvirt(top)
    instance = {'name': 'web-9', 'local_storage_path': '/src/local',
                'disks': [{'name': 'vda', 'location': 'local',
                           'path': '/src/local/web-9/disk.qcow2'}]}
    paths = driver.cold_import_paths(instance, [{'id': 'disk:vda', 'kind': 'disk'},
                                                {'id': 'saved_state', 'kind': 'saved_state'}])
    assert paths == {'disk:vda': str(local / 'web-9' / 'disk.qcow2'),
                     'saved_state': str(local / 'web-9.incoming-save')}
    instance['name'] = '../escaped'
    with pytest.raises(exception.InvalidName):
        driver.cold_import_paths(instance, [{'id': 'saved_state', 'kind': 'saved_state'}])
