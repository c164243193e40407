"""A disk's virtual size read from its image file, without asking QEMU."""

import struct
import xml.etree.ElementTree as ET

import pytest

from vmmig import exception
from vmmig.hypervisor.libvirt import guest

GiB = 1024 ** 3


def _qcow2(path, size, version=3):
    # The fields before the size: magic, version, backing file offset (8) and
    # size (4), cluster bits (4); then the virtual size, all big-endian.
    header = guest.QCOW2_MAGIC + struct.pack('>IQII', version, 0, 0, 16) + struct.pack(
        '>Q', size)
    path.write_bytes(header + b'\0' * 4064)
    return str(path)


def test_qcow2_virtual_size_comes_from_the_header(tmp_path):
    # The file is 4 KiB; the disk it describes is 10 GiB.
    path = _qcow2(tmp_path / 'vda.qcow2', 10 * GiB)
    assert guest.file_capacity(path, 'qcow2') == 10 * GiB


def test_raw_virtual_size_is_the_file_size(tmp_path):
    path = tmp_path / 'vda.img'
    with open(path, 'wb') as f:
        f.truncate(64 * 1024 * 1024)
    assert guest.file_capacity(str(path), 'raw') == 64 * 1024 * 1024


def test_a_file_that_is_not_qcow2_is_left_to_qemu(tmp_path):
    path = tmp_path / 'fake.qcow2'
    path.write_bytes(b'not a qcow2 image at all, only text' * 4)
    assert guest.file_capacity(str(path), 'qcow2') is None


def test_a_truncated_header_is_left_to_qemu(tmp_path):
    path = tmp_path / 'short.qcow2'
    path.write_bytes(guest.QCOW2_MAGIC + b'\0' * 8)
    assert guest.file_capacity(str(path), 'qcow2') is None


def test_other_formats_and_unreadable_files_are_left_to_qemu(tmp_path):
    path = _qcow2(tmp_path / 'vda.qcow2', GiB)
    assert guest.file_capacity(path, 'vmdk') is None
    assert guest.file_capacity(path, None) is None
    assert guest.file_capacity(str(tmp_path / 'missing.qcow2'), 'qcow2') is None
    assert guest.file_capacity(str(tmp_path / 'missing.img'), 'raw') is None


def test_formats_are_read_from_the_disk_drivers():
    root = ET.fromstring("""<domain><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
        <source file='/s/a.qcow2'/><target dev='vda'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='/s/b.img'/><target dev='vdb'/></disk>
      <disk type='network' device='disk'><driver name='qemu' type='raw'/>
        <source protocol='nbd' name='v'><host name='h' port='1'/></source>
        <target dev='vdc'/></disk>
    </devices></domain>""")
    assert guest._image_formats(root) == {'vda': 'qcow2', 'vdb': 'raw'}


# PCI passthrough and vGPUs ----------------------------------------------------------

DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>gpu</name>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/></source>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x3c' slot='0x00' function='0x1'/></source>
    </hostdev>
    <interface type='network'><source network='default'/></interface>
  </devices>
  <qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>
</domain>"""


def test_hostdevs_are_moved_to_the_destination_s_devices():
    moved = guest.rewrite_pci_hostdevs(DOMAIN, {'0000:3b:00.0': '0000:af:00.0',
                                                '0000:3c:00.1': '0000:d8:01.2'})
    root = ET.fromstring(moved)
    assert guest.pci_hostdevs(root) == ['0000:af:00.0', '0000:d8:01.2']
    source = root.find('./devices/hostdev/source/address')
    assert source.attrib == {'domain': '0x0000', 'bus': '0xaf', 'slot': '0x00',
                             'function': '0x0'}
    # The guest-side address (where the guest sees the device) is not the host's.
    assert root.find('./devices/hostdev/address').get('slot') == '0x05'
    assert "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" in moved.replace(
        '"', "'")
    assert root.find('./devices/interface/source').get('network') == 'default'


def test_a_domain_without_hostdevs_is_left_as_it_is():
    xml = "<domain type='kvm'><name>plain</name><devices/></domain>"
    assert guest.rewrite_pci_hostdevs(xml, {}) is xml


def test_a_hostdev_left_without_a_device_here_is_an_error():
    with pytest.raises(KeyError):
        guest.rewrite_pci_hostdevs(DOMAIN, {'0000:3b:00.0': '0000:af:00.0'})


NODEDEV = """<device><name>pci_0000_af_00_0</name><parent>computer</parent>
  <capability type='pci'><class>0x030200</class>
    <domain>0</domain><bus>175</bus><slot>0</slot><function>0</function>
    <product id='0x1db6'>GV100GL</product><vendor id='0x10de'>NVIDIA</vendor>
    %s
  </capability></device>"""
IOMMU = "<iommuGroup number='80'><address domain='0x0000' bus='0xaf'/></iommuGroup>"


@pytest.mark.parametrize('extra,assignable', [(IOMMU, True), ('', False)])
def test_a_node_device_gives_its_address_kind_and_assignability(extra, assignable):
    assert guest.pci_node_device(NODEDEV % extra) == {
        'address': '0000:af:00.0', 'type': 'pci', 'product': '10de:1db6',
        'assignable': assignable}


def test_a_bridge_is_not_assignable():
    bridge = (NODEDEV % IOMMU).replace('0x030200', '0x060400')
    assert guest.pci_node_device(bridge)['assignable'] is False


def test_mdev_types_and_the_type_of_an_mdev():
    parent = """<device><name>pci_0000_af_00_0</name><capability type='pci'>
      <capability type='mdev_types'>
        <type id='nvidia-63'><name>GRID V100-1Q</name><availableInstances>15</availableInstances>
        </type>
        <type id='nvidia-64'><availableInstances>0</availableInstances></type>
      </capability></capability></device>"""
    assert guest.mdev_types(parent) == {'nvidia-63': 15, 'nvidia-64': 0}
    mdev = """<device><name>mdev_4b20d080</name><capability type='mdev'>
      <type id='nvidia-63'/><iommuGroup number='12'/></capability></device>"""
    assert guest.mdev_type(mdev) == 'nvidia-63'


UUID = '4b20d080-1b54-4048-85b3-a6a62d165c01'


@pytest.mark.parametrize('xml', [
    # libvirt >= 7.3 gives the UUID as an element; the name has the parent too.
    "<device><name>mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_af_00_0</name>"
    "<capability type='mdev'><type id='nvidia-63'/><uuid>%s</uuid></capability>"
    "</device>" % UUID,
    # Older ones only in the name.
    "<device><name>mdev_4b20d080_1b54_4048_85b3_a6a62d165c01</name>"
    "<capability type='mdev'><type id='nvidia-63'/></capability></device>",
], ids=['uuid-element', 'name-only'])
def test_the_uuid_of_an_mdev(xml):
    assert guest.mdev_uuid(xml) == UUID


def test_a_vgpu_s_type_is_its_mediated_device_s_not_the_hostdev_model():
    root = ET.fromstring("""<domain><devices>
      <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
        <source><address uuid='%s'/></source></hostdev>
      <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
        <source><address uuid='00000000-0000-0000-0000-000000000000'/></source></hostdev>
    </devices></domain>""" % UUID.upper())
    # The second one is not a device of this host: 'unknown', which no host offers.
    assert guest.vgpus_of(root, {UUID: 'nvidia-63'}) == ['nvidia-63', 'unknown']


# Moving local disk paths ---------------------------------------------------------------
MOVABLE = """<domain type='qemu'><name>vm</name>
  <description>disk at /src/local/vm.qcow2; see /src/local/notes</description>
  <devices>
    <disk type='file' device='disk'><source file='/src/local/vm.qcow2'/>
      <target dev='vda'/></disk>
    <disk type='file' device='disk'><source file='/shared/vm-data.qcow2'/>
      <target dev='vdb'/></disk>
  </devices>
</domain>"""


def test_only_disk_sources_are_moved():
    root = ET.fromstring(guest.move_paths(MOVABLE, '/src/local', '/dst/local'))
    assert [s.get('file') for s in root.findall('./devices/disk/source')] == [
        '/dst/local/vm.qcow2', '/shared/vm-data.qcow2']
    assert root.findtext('description') == ('disk at /src/local/vm.qcow2; '
                                            'see /src/local/notes')


def test_nothing_to_move_leaves_the_text_as_it_is():
    assert guest.move_paths(MOVABLE, '/elsewhere', '/dst/local') == MOVABLE
    assert guest.move_paths(MOVABLE, '/src/local', '/src/local') == MOVABLE


def test_a_disk_climbing_out_of_the_source_storage_is_refused():
    hostile = MOVABLE.replace('/src/local/vm.qcow2', '/src/local/x/../../../etc/passwd')
    # Normalised, it is not under /src/local: it is left alone, and never moved outside.
    moved = guest.move_paths(hostile, '/src/local', '/dst/local')
    assert '/dst/' not in moved
    with pytest.raises(exception.Invalid):
        guest.moved_path('/src/local/../../etc/passwd', '/src/local', '/dst/local')


def test_a_file_is_in_use_only_as_a_disk_source(tmp_path):
    disk = tmp_path / 'a&b.qcow2'
    xml = ("<domain><description>%s</description><devices><disk type='file'>"
           "<source file='%s'/></disk></devices></domain>")
    # Named only in the description: not in use. As a source, escaped in XML: in use.
    assert not guest.uses_file(xml % (tmp_path / 'vm.qcow2', '/other.qcow2'),
                               str(tmp_path / 'vm.qcow2'))
    assert guest.uses_file(xml % ('', str(disk).replace('&', '&amp;')), str(disk))
    # A longer name that contains the path is another file.
    assert not guest.uses_file(xml % ('', str(tmp_path / 'vm.qcow2.bak')),
                               str(tmp_path / 'vm.qcow2'))
