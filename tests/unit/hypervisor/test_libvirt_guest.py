"""A disk's virtual size read from its image file, without asking QEMU."""

import struct

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
    root = guest.ET.fromstring("""<domain><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
        <source file='/s/a.qcow2'/><target dev='vda'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='/s/b.img'/><target dev='vdb'/></disk>
      <disk type='network' device='disk'><driver name='qemu' type='raw'/>
        <source protocol='nbd' name='v'><host name='h' port='1'/></source>
        <target dev='vdc'/></disk>
    </devices></domain>""")
    assert guest._image_formats(root) == {'vda': 'qcow2', 'vdb': 'raw'}
