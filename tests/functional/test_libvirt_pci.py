"""PCI passthrough on cold migration, through the libvirt driver and a real libvirt.

There is no device to pass through on the machines that run these tests: the
destination is libvirt's own test driver (test:///, in this process) given a
node with PCI devices, and the VM is defined only, never started. What is checked
is the definition the driver writes: each <hostdev> moved to a free device of the
same kind. The attach of a real device to a running guest is not exercised.
"""

import xml.etree.ElementTree as ET

from oslo_config import fixture as config_fixture
import pytest

from vmmig import conf
from vmmig import exception
from vmmig.hypervisor.libvirt import guest

libvirt = pytest.importorskip('libvirt')
from vmmig.hypervisor.libvirt import driver as libvirt_driver  # noqa: E402

GPU, NIC = '10de:1db6', '15b3:101e'


def _device(address, product, pci_class='0x030200', iommu=True, extra=''):
    domain, bus, rest = address.split(':')
    slot, function = rest.split('.')
    vendor, device = product.split(':')
    return """<device><name>pci_%s</name><parent>computer</parent>
  <capability type='pci'><class>%s</class>
    <domain>%d</domain><bus>%d</bus><slot>%d</slot><function>%d</function>
    <product id='0x%s'/><vendor id='0x%s'/>%s%s
  </capability></device>""" % (
        address.replace(':', '_').replace('.', '_'), pci_class, int(domain, 16),
        int(bus, 16), int(slot, 16), int(function, 16), device, vendor,
        # An IOMMU group lists its devices (libvirt drops an empty one).
        "<iommuGroup number='%d'><address domain='0x%s' bus='0x%s' slot='0x%s' "
        "function='0x%s'/></iommuGroup>" % (int(bus, 16), domain, bus, slot, function)
        if iommu else '', extra)


MDEV_TYPES = """<capability type='mdev_types'><type id='nvidia-63'><name>GRID V100-1Q</name>
  <deviceAPI>vfio-pci</deviceAPI><availableInstances>3</availableInstances></type>
  </capability>"""

NODE = '<node>%s</node>' % ''.join([
    _device('0000:af:00.0', GPU),                     # held by another VM
    _device('0000:d8:00.0', GPU, extra=MDEV_TYPES),   # free
    _device('0000:5e:00.0', NIC),                     # free, another kind
    _device('0000:00:1c.0', '8086:a110', pci_class='0x060400'),  # a bridge
])


def _domain(name, *addresses):
    hostdevs = ''.join(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source><address "
        "domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/></source></hostdev>"
        % tuple(a.replace('.', ':').split(':')) for a in addresses)
    return ("<domain type='test'><name>%s</name><memory>65536</memory><os><type>hvm</type>"
            "</os><devices>%s</devices></domain>" % (name, hostdevs))


def _arriving(name, *devices):
    """The instance dict a source sends: its devices are the source's."""
    return {'name': name, 'xml': _domain(name, *(a for a, _p in devices)),
            'power_state': 'shutoff', 'local_storage_path': None,
            'pci_devices': [a for a, _p in devices], 'pci_products': dict(devices)}


@pytest.fixture
def dest(tmp_path):
    node = tmp_path / 'node.xml'
    node.write_text(NODE)
    fix = config_fixture.Config(conf.CONF)
    fix.setUp()
    fix.config(group='libvirt', uri='test://%s' % node, shared_storage_path=str(tmp_path),
               local_storage_path=str(tmp_path))
    driver = libvirt_driver.LibvirtDriver(conf.CONF, 'host2')
    driver.init_host()
    driver.conn.defineXML(_domain('holder', '0000:af:00.0'))
    yield driver
    driver.cleanup_host()
    fix.cleanUp()


def _defined_hostdevs(driver, name):
    return guest.pci_hostdevs(ET.fromstring(driver.conn.lookupByName(name).XMLDesc(0)))


def test_the_facts_name_each_device_s_kind_and_holder(dest):
    devices = {d['address']: d for d in dest._pci_devices()}
    assert devices['0000:af:00.0'] == {'address': '0000:af:00.0', 'type': 'pci',
                                       'product': GPU, 'assignable': True,
                                       'instance': 'holder'}
    assert devices['0000:d8:00.0']['instance'] is None
    assert devices['0000:00:1c.0']['assignable'] is False
    assert dest._vgpus() == {'nvidia-63': {'total': 3, 'free': 3}}


def test_cold_define_moves_the_hostdev_to_a_free_device_of_its_kind(dest):
    arrived = dest.cold_define(_arriving('gpu-vm', ('0000:3b:00.0', GPU)), [])
    assert _defined_hostdevs(dest, 'gpu-vm') == ['0000:d8:00.0']
    assert arrived['pci_devices'] == ['0000:d8:00.0']
    assert arrived['pci_products'] == {'0000:d8:00.0': GPU}
    assert arrived['power_state'] == 'shutoff'
    # The device is taken now: a second VM of that kind finds none, and is not defined.
    with pytest.raises(exception.HypervisorError) as err:
        dest.cold_define(_arriving('gpu-vm2', ('0000:3b:00.0', GPU)), [])
    assert 'no free PCI passthrough device of kind 10de:1db6 for gpu-vm2' in str(err.value)
    with pytest.raises(libvirt.libvirtError):
        dest.conn.lookupByName('gpu-vm2')
    # Another kind still has its own free device.
    dest.cold_define(_arriving('nic-vm', ('0000:3b:00.1', NIC)), [])
    assert _defined_hostdevs(dest, 'nic-vm') == ['0000:5e:00.0']
