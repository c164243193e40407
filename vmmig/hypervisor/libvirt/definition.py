"""The check of a domain definition the agent is asked to define (cold migration,
evacuation): it came over RPC or from the database, so it is held to what the VM
is known to have before libvirt sees it.

A definition passes when every host file it names is one the VM may use here
(disks under the storage paths, other files under ``[libvirt] allowed_paths``),
its disks, volumes and passed-through devices are those of the instance it
came with, and it asks QEMU for nothing beyond libvirt's schema (no
``<qemu:commandline>``). Every reason is listed, not only the first.
"""

import os
import xml.etree.ElementTree as ET

from vmmig.hypervisor.libvirt import guest
from vmmig import names
from vmmig.storage import base as storage

QEMU_NS = '{http://libvirt.org/schemas/domain/qemu/1.0}'
# Attributes that name a file or directory of the host.
PATH_ATTRIBUTES = ('file', 'dir', 'path', 'socket')
# Elements of <os> whose text is a host file QEMU reads.
OS_FILES = ('kernel', 'initrd', 'dtb', 'loader', 'nvram')


def _under_any(path, directories):
    return any(names.is_under(path, d) for d in directories if d)


def _disk_problems(root, instance, storage_dirs, other_dirs):
    problems = []
    volumes = {d.get('volume') for d in instance.get('disks', [])
               if d.get('location') == storage.VOLUME}
    for disk in root.findall('./devices/disk'):
        kind = disk.get('type')
        target = disk.find('target')
        name = target.get('dev') if target is not None else '?'
        if kind == 'file':
            for source in disk.iter('source'):
                path = source.get('file')
                if path and not _under_any(path, storage_dirs):
                    problems.append('disk %s: %s is not under the storage paths %s'
                                    % (name, path, ', '.join(storage_dirs)))
        elif kind in ('block', 'network'):
            pass  # compared with the instance's volumes below
        else:
            problems.append('disk %s: type %r is not one vmmig moves' % (name, kind))
    for disk in guest.disks_of(root, None):
        if disk['location'] == storage.VOLUME and disk['volume'] not in volumes:
            problems.append('disk %s: volume %s is not one of the instance\'s (%s)'
                            % (disk['name'], disk['volume'],
                               ', '.join(sorted(v for v in volumes if v)) or 'none'))
    known = sorted(d['name'] for d in instance.get('disks', []))
    found = sorted(d['name'] for d in guest.disks_of(root, None))
    if found != known:
        problems.append('its disks %s are not the instance\'s %s'
                        % (', '.join(found) or 'none', ', '.join(known) or 'none'))
    return problems


def _hostdev_problems(root, instance):
    problems = []
    pci = guest.pci_hostdevs(root)
    if sorted(pci) != sorted(instance.get('pci_devices') or []):
        problems.append('its PCI devices %s are not the instance\'s %s'
                        % (', '.join(pci) or 'none',
                           ', '.join(instance.get('pci_devices') or []) or 'none'))
    mdevs = root.findall("./devices/hostdev[@type='mdev']")
    if len(mdevs) != len(instance.get('vgpus') or []):
        problems.append('it has %d vGPU(s); the instance has %d'
                        % (len(mdevs), len(instance.get('vgpus') or [])))
    for hostdev in root.findall('./devices/hostdev'):
        if hostdev.get('type') not in ('pci', 'mdev') or (
                hostdev.get('type') == 'pci' and hostdev.get('mode') != 'subsystem'):
            problems.append('a host device of type %r (mode %r), which the instance does '
                            'not have' % (hostdev.get('type'), hostdev.get('mode')))
    return problems


def _file_problems(root, other_dirs):
    problems = []
    for device in root.find('devices') if root.find('devices') is not None else ():
        if device.tag in ('disk', 'hostdev'):
            continue
        for element in device.iter():
            if element.tag == 'target':
                continue  # the guest's side (a mount tag, a port): no host file
            for attribute in PATH_ATTRIBUTES:
                path = element.get(attribute)
                if path and not _under_any(path, other_dirs):
                    problems.append('<%s> names %s, outside the allowed paths %s'
                                    % (device.tag, path, ', '.join(other_dirs) or '(none)'))
        if device.tag == 'emulator' and not _under_any(device.text or '', other_dirs):
            problems.append('<emulator> %s is outside the allowed paths %s'
                            % (device.text, ', '.join(other_dirs) or '(none)'))
    for tag in OS_FILES:
        for element in root.findall('./os/%s' % tag):
            path = (element.text or '').strip()
            if path and not _under_any(path, other_dirs):
                problems.append('<os><%s> %s is outside the allowed paths %s'
                                % (tag, path, ', '.join(other_dirs) or '(none)'))
    return problems


def problems(xml, instance, storage_dirs, other_dirs):
    """Every reason ``xml`` may not be defined here for ``instance`` (empty: it may).

    ``storage_dirs``: where its disk files may be (this host's local and shared
    storage); ``other_dirs``: where the other host files it names may be.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        return ['it is not XML (%s)' % e]
    found = []
    if root.findtext('name') != instance.get('name'):
        found.append('it defines %r, not %r' % (root.findtext('name'), instance.get('name')))
    if any(e.tag.startswith(QEMU_NS) for e in root.iter()):
        found.append('it passes QEMU options of its own (qemu: namespace)')
    found += _disk_problems(root, instance, [os.path.normpath(d) for d in storage_dirs if d],
                            other_dirs)
    found += _hostdev_problems(root, instance)
    found += _file_problems(root, other_dirs)
    return found
