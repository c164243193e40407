"""Reading a libvirt domain into vmmig's instance dict, and moving its paths.

A disk is local when its file is on this host's own storage, shared when it
is on the instances storage the hosts share, and a volume when it is a
network block device (NBD, iSCSI, RBD) served outside the hosts.
"""

import os
import struct
import xml.etree.ElementTree as ET

from vmmig import exception
from vmmig import names
from vmmig.storage import base as storage

POWER_STATES = {0: 'shutoff', 1: 'running', 2: 'running', 3: 'paused', 4: 'running',
                5: 'shutoff', 6: 'shutoff', 7: 'paused'}


def _under(path, directory):
    if not path or not directory:
        return False
    directory = os.path.realpath(directory)
    return os.path.realpath(path).startswith(directory.rstrip('/') + '/')


def disks_of(root, shared_path):
    disks = []
    for disk in root.findall('./devices/disk'):
        if disk.get('device', 'disk') != 'disk':
            continue
        target = disk.find('target').get('dev')
        source = disk.find('source')
        entry = {'name': target}
        if disk.get('type') == 'network':
            host = source.find('host')
            entry.update(location=storage.VOLUME, volume='%s://%s:%s/%s' % (
                source.get('protocol'), host.get('name') if host is not None else '',
                host.get('port') if host is not None else '', source.get('name') or ''))
        elif disk.get('type') == 'block':
            entry.update(location=storage.VOLUME, volume=source.get('dev'))
        else:
            path = source.get('file') if source is not None else None
            entry.update(path=path, location=storage.SHARED if _under(path, shared_path)
                         else storage.LOCAL)
        disks.append(entry)
    return disks


QCOW2_MAGIC = b'QFI\xfb'


def _image_formats(root):
    """{disk name: image format} of the file-backed disks, from their drivers."""
    formats = {}
    for disk in root.findall("./devices/disk[@type='file']"):
        target, driver = disk.find('target'), disk.find('driver')
        if target is not None and driver is not None:
            formats[target.get('dev')] = driver.get('type')
    return formats


def file_capacity(path, fmt):
    """The virtual size of a disk image read from the file itself; None when this
    cannot tell (another format, an unreadable file): QEMU is asked then.

    QEMU answers a block query from its main loop, which a guest under software
    emulation keeps busy: 4 ms idle and more during a migration, on every read of
    a running domain. The image's own header says the same for qcow2 and raw.
    """
    try:
        if fmt == 'qcow2':
            with open(path, 'rb') as f:
                header = f.read(32)
            # magic, version, backing file offset and size, cluster bits, then the size
            if len(header) == 32 and header[:4] == QCOW2_MAGIC:
                return struct.unpack('>Q', header[24:32])[0]
        elif fmt == 'raw':
            return os.stat(path).st_size
    except OSError:
        pass
    return None


def required_features(cpu):
    """Names of the features a libvirt <cpu> element asks for (not those it disables)."""
    return [f.get('name') for f in cpu.findall('feature')
            if f.get('policy', 'require') in ('require', 'force')]


PCI_HOSTDEV_ADDRESS = "./devices/hostdev[@mode='subsystem'][@type='pci']/source/address"
# Kept as it is when a definition is written back (ElementTree would say ns0).
ET.register_namespace('qemu', 'http://libvirt.org/schemas/domain/qemu/1.0')


def pci_address(fields):
    """'0000:3b:00.0' of a libvirt <address domain bus slot function> element (or of
    a dict of those numbers, hexadecimal with 0x or decimal as nodedev XML gives them)."""
    def number(text):
        return int(text, 16) if text.lower().startswith('0x') else int(text)
    return '%04x:%02x:%02x.%x' % tuple(number(fields.get(k) or '0') for k in (
        'domain', 'bus', 'slot', 'function'))


def pci_hostdevs(root):
    """Addresses of the PCI devices a domain passes through, in its order."""
    return [pci_address(a) for a in root.findall(PCI_HOSTDEV_ADDRESS)]


def _hex_id(element):
    return element.get('id', '')[2:] if element is not None else ''


def pci_node_device(xml):
    """The facts of one PCI node device (its libvirt nodedev XML), or None if it is none.

    Its kind is the vendor:product id; it can be passed through when it sits in an
    IOMMU group (VFIO needs one) and is not a bridge, which holds the devices behind it.
    """
    cap = ET.fromstring(xml).find("./capability[@type='pci']")
    if cap is None:
        return None
    address = pci_address({k: cap.findtext(k, '0')
                           for k in ('domain', 'bus', 'slot', 'function')})
    vendor, product = _hex_id(cap.find('vendor')), _hex_id(cap.find('product'))
    pci_class = cap.findtext('class') or ''
    return {'address': address, 'type': 'pci',
            'product': '%s:%s' % (vendor, product) if vendor and product else None,
            'assignable': (cap.find('iommuGroup') is not None
                           and not pci_class.startswith('0x06'))}


def mdev_types(xml):
    """{mediated device type: instances still available} of a parent device's XML."""
    return {t.get('id'): int(t.findtext('availableInstances') or 0)
            for t in ET.fromstring(xml).findall(".//capability[@type='mdev_types']/type")}


def mdev_type(xml):
    """The type of a mediated device (its nodedev XML), or None."""
    found = ET.fromstring(xml).find("./capability[@type='mdev']/type")
    return found.get('id') if found is not None else None


def mdev_uuid(xml):
    """The UUID of a mediated device (its nodedev XML): the <uuid> libvirt gives, else
    the one in its name (mdev_<uuid with _>[_<parent>] in older releases)."""
    root = ET.fromstring(xml)
    found = root.findtext("./capability[@type='mdev']/uuid")
    if found:
        return found.strip().lower()
    name = (root.findtext('name') or '').split('_')
    return '-'.join(name[1:6]).lower() if len(name) >= 6 and name[0] == 'mdev' else None


def vgpus_of(root, mdev_types_by_uuid):
    """The vGPU type of each mediated device a domain holds, found through the device's
    UUID (the hostdev's ``model`` is the bus, vfio-pci, not the type); a device this
    host does not know is 'unknown', which no host offers."""
    found = []
    for hostdev in root.findall("./devices/hostdev[@type='mdev']"):
        address = hostdev.find('source/address')
        uuid = (address.get('uuid') or '').lower() if address is not None else ''
        found.append((mdev_types_by_uuid or {}).get(uuid) or 'unknown')
    return found


def rewrite_pci_hostdevs(xml, addresses):
    """The domain XML with each passed-through PCI device moved to another host device.

    ``addresses``: {address on the source: address here}; every PCI hostdev of the
    domain must be in it (a device left pointing at the source's address would give
    the guest whatever this host has there).
    """
    root = ET.fromstring(xml)
    elements = root.findall(PCI_HOSTDEV_ADDRESS)
    if not elements:
        return xml
    for element in elements:
        new = addresses[pci_address(element)]
        domain, bus, rest = new.split(':')
        slot, function = rest.split('.')
        element.set('domain', '0x%s' % domain)
        element.set('bus', '0x%s' % bus)
        element.set('slot', '0x%s' % slot)
        element.set('function', '0x%s' % function)
    return ET.tostring(root, encoding='unicode')


HA_NAMESPACE = 'https://vmmig.example/ha/1'


def ha_metadata(root):
    """The VM's HA settings from its domain metadata, as the simulator's ``ha``::

        <metadata><ha:ha xmlns:ha="https://vmmig.example/ha/1" enabled="true"
                         priority="10"/></metadata>

    {} without the element (enabled, priority 0: see vmmig.strategies.evacuate)."""
    element = root.find('./metadata/{%s}ha' % HA_NAMESPACE)
    if element is None:
        return {}
    return {k: v for k, v in element.attrib.items() if k in ('enabled', 'priority')}


def instance_of(dom, shared_path, has_managed_save, capacities=None, pci_products=None,
                mdev_types_by_uuid=None):
    """The instance dict of a libvirt domain (see vmmig.hypervisor.base).

    ``capacities``: {disk name: virtual size} known to be current (the source's, after
    a live migration, which does not resize disks); the others are read from the
    image file where its format allows, else asked of QEMU, one block query each.
    ``pci_products``: {PCI address: vendor:product id} of this host's devices.
    """
    capacities = capacities or {}
    xml = dom.XMLDesc(0)
    inactive_xml = dom.XMLDesc(2)  # VIR_DOMAIN_XML_INACTIVE: what a destination defines
    root = ET.fromstring(xml)
    state, _reason = dom.state()
    power = POWER_STATES.get(state, 'shutoff')
    if power == 'shutoff' and has_managed_save:
        power = 'suspended'
    disks = disks_of(root, shared_path)
    formats = _image_formats(root)
    for disk in disks:
        capacity = capacities.get(disk['name'])
        if capacity is None and disk.get('path'):
            capacity = file_capacity(disk['path'], formats.get(disk['name']))
        try:
            disk['capacity'] = (capacity if capacity is not None
                                else dom.blockInfo(disk['name'])[0])
        except Exception:  # noqa: a network volume may not answer while shut off
            disk['capacity'] = 0
        disk['size_gb'] = round(disk['capacity'] / 1024 ** 3, 3)
    cpu = root.find('cpu')
    features = []
    cpu_xml = None
    if cpu is not None:
        features = required_features(cpu)
        cpu_xml = ET.tostring(cpu, encoding='unicode')
    # The CPU the definition asks for: the live one above is what the hypervisor gave
    # (TCG quietly drops features it cannot emulate), but the destination keeps the
    # definition and must be able to start the VM from it.
    configured = ET.fromstring(inactive_xml).find('cpu')
    configured_xml = (ET.tostring(configured, encoding='unicode')
                      if configured is not None else None)
    pci = pci_hostdevs(root)
    mdevs = vgpus_of(root, mdev_types_by_uuid)
    return {
        'name': dom.name(),
        'uuid': dom.UUIDString(),
        'vcpus': int(root.findtext('vcpu') or 1),
        'memory_mb': int(dom.maxMemory() // 1024),
        'power_state': power,
        'storage_mode': storage.storage_mode_of(disks),
        'disks': disks,
        'pci_devices': pci,
        'pci_products': {a: (pci_products or {}).get(a) for a in pci},
        'vgpus': mdevs,
        'cpu_features': features,
        'cpu_xml': cpu_xml,
        'cpu_xml_configured': configured_xml,
        # What compareHypervisorCPU needs to judge the guest CPU as this domain runs it.
        'virt_type': root.get('type'),
        'arch': root.find('./os/type').get('arch') if root.find('./os/type') is not None
        else None,
        'xml': inactive_xml,
        'ha': ha_metadata(root),
    }


def moved_path(path, source_dir, dest_dir):
    """Where a file of the source host's local storage goes on this host: the same
    path relative to ``dest_dir``, each part a checked name (vmmig.names).

    Invalid when ``path`` is not under ``source_dir``: a path the caller sent may
    name any file, and a copy or a ``qemu-img create`` there would overwrite it.
    """
    if not path or not source_dir or not os.path.isabs(path):
        raise exception.Invalid(reason='local disk %r is not a path under the source\'s '
                                       'local storage %r' % (path, source_dir))
    relative = os.path.relpath(os.path.normpath(path), os.path.normpath(source_dir))
    if relative == '.' or relative.split('/')[0] == '..':
        raise exception.Invalid(reason='local disk %s is not under the source\'s local '
                                       'storage %s' % (path, source_dir))
    return names.safe_path(dest_dir, *relative.split('/'))


def file_sources(root):
    """The <source file=...> elements of a domain's file-backed disks."""
    return [s for s in root.findall("./devices/disk[@type='file']/source") if s.get('file')]


def move_paths(xml, source_dir, dest_dir):
    """The domain XML with each file-backed disk of the source's local storage moved to
    this host's (``moved_path``); nothing else in it is touched (a <description>
    naming the path stays as it was). The same text when nothing moved."""
    if not source_dir or os.path.realpath(source_dir) == os.path.realpath(dest_dir):
        return xml
    root = ET.fromstring(xml)
    moved = False
    for source in file_sources(root):
        if _in_dir(source.get('file'), source_dir):
            source.set('file', moved_path(source.get('file'), source_dir, dest_dir))
            moved = True
    return ET.tostring(root, encoding='unicode') if moved else xml


def _in_dir(path, directory):
    """``path`` is under ``directory``, as text (the source host's files: not here)."""
    relative = os.path.relpath(os.path.normpath(path), os.path.normpath(directory))
    return relative != '.' and relative.split('/')[0] != '..'


def uses_file(xml, path):
    """A domain's disks (or their backing chains) use the file ``path``."""
    wanted = os.path.realpath(path)
    root = ET.fromstring(xml)
    return any(os.path.realpath(s.get('file')) == wanted
               for s in root.findall('./devices/disk//source') if s.get('file'))


def local_files(instance):
    return [d['path'] for d in instance.get('disks', [])
            if d['location'] == storage.LOCAL and d.get('path')]
