"""The libvirt hypervisor driver: real QEMU guests under a real libvirt daemon.

libvirt-python is imported here only, so that vmmig installs without
libvirt's C headers; install ``vmmig[libvirt]`` on hypervisor hosts.
"""

import logging
import os
import platform
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET

from vmmig.hypervisor import base
from vmmig.hypervisor.libvirt import definition
from vmmig.hypervisor.libvirt import guest
from vmmig.hypervisor.libvirt import migration
from vmmig.hypervisor import pci
from vmmig import exception
from vmmig import names

LOG = logging.getLogger(__name__)

_EVENT_LOOP = None
_EVENT_LOOP_LOCK = threading.Lock()


def _import_libvirt():
    try:
        import libvirt
    except ImportError:
        raise exception.InvalidOption(option='[drivers] hypervisor', value='libvirt',
                                      reason='libvirt-python is not installed; install '
                                             'vmmig[libvirt]')
    return libvirt


def _start_event_loop(libvirt):
    """libvirt delivers events (job completed) only to a process running its loop."""
    global _EVENT_LOOP
    with _EVENT_LOOP_LOCK:
        if _EVENT_LOOP is None:
            # Every failure reaches us as a libvirtError; libvirt's default handler would
            # also print each one (a VM that left while we looked) on stderr.
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            libvirt.virEventRegisterDefaultImpl()

            def run():
                while True:
                    libvirt.virEventRunDefaultImpl()
            _EVENT_LOOP = threading.Thread(target=run, name='vmmig-libvirt-events',
                                           daemon=True)
            _EVENT_LOOP.start()


def _version(number):
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


class LibvirtDriver(base.HypervisorDriver):
    capabilities = {'live_migration': True, 'post_copy': True, 'auto_converge': True,
                    'block_migration': True, 'announce': True}

    def __init__(self, conf, host):
        super().__init__(conf, host)
        self.opts = conf.libvirt
        self.libvirt = None
        self.conn = None
        self.completed = migration.CompletedStats()
        self._host_cpu = None
        self._pci = None
        # Devices are chosen for an arriving VM one VM at a time: never one given twice.
        self._pci_lock = threading.Lock()
        self._unnamed = set()  # domain names already warned about

    def validate(self):
        self.libvirt = _import_libvirt()
        for option in ('shared_storage_path', 'local_storage_path'):
            path = getattr(self.opts, option)
            if not os.path.isdir(path):
                raise exception.InvalidOption(option='[libvirt] %s' % option, value=path,
                                              reason='is not a directory')

    def init_host(self):
        self.libvirt = self.libvirt or _import_libvirt()
        _start_event_loop(self.libvirt)
        self.conn = self.libvirt.open(self.opts.uri)
        self.conn.domainEventRegisterAny(None, self.libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                         self._job_completed, None)

    def _job_completed(self, conn, dom, params, opaque):
        self.completed.record(dom.name(), params)

    def cleanup_host(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except self.libvirt.libvirtError:
                pass
            self.conn = None
        self._host_cpu = None
        self._pci = None

    # Inventory --------------------------------------------------------------

    def _domain(self, name):
        try:
            return self.conn.lookupByName(name)
        except self.libvirt.libvirtError as e:
            if e.get_error_code() == self.libvirt.VIR_ERR_NO_DOMAIN:
                raise exception.InstanceNotFound(instance=name)
            raise exception.HypervisorError(host=self.host, reason=e.get_error_message())

    def _incoming(self, dom):
        state, reason = dom.state()
        return (state == self.libvirt.VIR_DOMAIN_PAUSED
                and reason in (self.libvirt.VIR_DOMAIN_PAUSED_MIGRATION,
                               getattr(self.libvirt, 'VIR_DOMAIN_PAUSED_STARTING_UP', -1))
                and not dom.isPersistent())

    def _instance(self, dom, capacities=None):
        inst = guest.instance_of(dom, self.opts.shared_storage_path,
                                 dom.hasManagedSaveImage(0), capacities,
                                 {d['address']: d['product'] for d in self._pci_inventory()},
                                 self._mdev_types_by_uuid())
        inst['host'] = self.host
        inst['local_storage_path'] = self.opts.local_storage_path
        return inst

    def list_instances(self):
        out = []
        for dom in self.conn.listAllDomains(0):
            try:
                if not self._named_by_the_rule(dom.name()):
                    continue
                if not self._incoming(dom):
                    out.append(self._instance(dom))
            except self.libvirt.libvirtError:
                continue  # it left while we looked
        return out

    def _named_by_the_rule(self, name):
        """Domains whose name breaks vmmig's rule (vmmig.names) are left out of what this
        agent reports, with a warning once per name: vmmig could not move them (their
        name would become a path, an argument of every call) and an operator should
        see why, rather than have the agent stop reporting the host's other VMs."""
        wrong = names.problem(name)
        if wrong is None:
            return True
        if name not in self._unnamed:
            self._unnamed.add(name)
            LOG.warning('host %s: domain %r is not managed by vmmig: %s', self.host, name,
                        wrong)
        return False

    def get_instance(self, name):
        dom = self._domain(name)
        if self._incoming(dom):
            raise exception.InstanceNotFound(instance=name)
        return self._instance(dom)

    def host_facts(self):
        model, memory_mb, cpus = self.conn.getInfo()[:3]
        cpu = self._host_cpu_facts()
        free_mb = self.conn.getFreeMemory() // (1024 * 1024)
        active = self.conn.listAllDomains(self.libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        local = os.statvfs(self.opts.local_storage_path)
        return {
            'host': self.host,
            'hypervisor': 'libvirt',
            'vcpus': cpus,
            'vcpus_used': sum(d.info()[3] for d in active),
            'memory_mb': memory_mb,
            'memory_mb_used': memory_mb - free_mb,
            'disk_gb': local.f_blocks * local.f_frsize // 1024 ** 3,
            'disk_gb_used': (local.f_blocks - local.f_bavail) * local.f_frsize // 1024 ** 3,
            'cpu_model': cpu['model'] or model,
            'cpu_vendor': cpu['vendor'],
            'cpu_features': cpu['features'],
            'os_version': self.opts.os_version or _os_version(),
            'hypervisor_type': 'QEMU',
            'hypervisor_version': _version(self.conn.getVersion()),
            'libvirt_version': _version(self.conn.getLibVersion()),
            'cluster': self.opts.cluster,
            'pci_devices': self._pci_devices(),
            'vgpus': self._vgpus(),
            'capabilities': dict(self.capabilities),
            'shared_storage': os.path.realpath(self.opts.shared_storage_path),
            'link_bandwidth': 1250000000,
        }

    def _pci_inventory(self):
        """The host's PCI devices: address, kind, whether one can be passed through.
        Read once per connection: a host's devices do not change while it runs."""
        if self._pci is None:
            devices = []
            try:
                for dev in self.conn.listAllDevices(
                        self.libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV):
                    devices.append(guest.pci_node_device(dev.XMLDesc(0)))
            except self.libvirt.libvirtError as e:
                LOG.warning('host %s: its PCI devices cannot be listed (%s); none is offered '
                            'for passthrough', self.host, e.get_error_message())
            self._pci = [d for d in devices if d is not None]
        return self._pci

    def _pci_devices(self):
        """The inventory, each device with the VM holding it (or None: free)."""
        devices = self._pci_inventory()
        holders = {}
        # Only a host with a device to give reads its domains' definitions for it.
        if any(d['assignable'] for d in devices):
            for dom in self.conn.listAllDomains(0):
                try:
                    for address in guest.pci_hostdevs(ET.fromstring(dom.XMLDesc(0))):
                        holders[address] = dom.name()
                except self.libvirt.libvirtError:
                    continue  # it left while we looked
        return [dict(d, instance=holders.get(d['address'])) for d in devices]

    def _mdev_types_by_uuid(self):
        """{mediated device UUID: its vGPU type} of this host."""
        try:
            devices = self.conn.listAllDevices(
                self.libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV)
        except self.libvirt.libvirtError:
            return {}  # no mediated devices on this host (or this libvirt)
        found = {}
        for dev in devices:
            try:
                xml = dev.XMLDesc(0)
            except self.libvirt.libvirtError:
                continue  # removed while we looked
            uuid, vtype = guest.mdev_uuid(xml), guest.mdev_type(xml)
            if uuid and vtype:
                found[uuid] = vtype
        return found

    def _vgpus(self):
        """{vGPU (mediated device) type: {'total', 'free'}} of the host's GPUs."""
        vgpus = {}
        try:
            for dev in self.conn.listAllDevices(
                    self.libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES):
                for vtype, free in guest.mdev_types(dev.XMLDesc(0)).items():
                    entry = vgpus.setdefault(vtype, {'total': 0, 'free': 0})
                    entry['free'] += free
                    entry['total'] += free
            if vgpus:
                for dev in self.conn.listAllDevices(
                        self.libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV):
                    vtype = guest.mdev_type(dev.XMLDesc(0))
                    if vtype in vgpus:
                        vgpus[vtype]['total'] += 1  # made already: in use or ready
        except self.libvirt.libvirtError:
            pass  # no mediated devices on this host (or this libvirt)
        return vgpus

    def _assign_pci_devices(self, instance, xml):
        """The definition with each passed-through device of the VM moved to a free one
        of the same kind here (the caller holds _pci_lock); HypervisorError if none."""
        wanted = instance.get('pci_devices') or []
        if not wanted:
            return xml
        chosen = pci.choose_free(self.host, instance['name'], wanted,
                                 instance.get('pci_products') or {}, self._pci_devices())
        return guest.rewrite_pci_hostdevs(xml, chosen)

    def _host_cpu_facts(self):
        """The host CPU's model, vendor and every feature it has, read once per connection.

        The capabilities name a model and only the features beyond it; a guest's CPU names
        its own (older) model and the features beyond that. Compared as they are, a feature
        the host's model implies (lahf_lm in Broadwell) looks missing, so the features
        are expanded, as Nova does for its CPU traits.
        """
        if self._host_cpu is None:
            cpu = ET.fromstring(self.conn.getCapabilities()).find('./host/cpu')
            if cpu is None:
                self._host_cpu = {'model': None, 'vendor': None, 'features': []}
                return self._host_cpu
            features = [f.get('name') for f in cpu.findall('feature')]
            try:
                expanded = ET.fromstring(self.conn.baselineCPU(
                    [ET.tostring(cpu, encoding='unicode')],
                    self.libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES))
                features = guest.required_features(expanded)
            except self.libvirt.libvirtError as e:
                LOG.warning('host %s: the features its CPU model %s implies are unknown '
                            '(%s); the CPU filter sees only those listed beyond it',
                            self.host, cpu.findtext('model'), e.get_error_message())
            self._host_cpu = {'model': cpu.findtext('model'),
                              'vendor': cpu.findtext('vendor'),
                              'features': sorted(set(features))}
        return self._host_cpu

    def check_cpu_compatible(self, instance, source_facts):
        reasons = []
        checked = set()
        for what, key in (('CPU it runs with', 'cpu_xml'),
                          ('CPU its definition requires', 'cpu_xml_configured')):
            cpu_xml = instance.get(key)
            if not cpu_xml or cpu_xml in checked:
                continue
            checked.add(cpu_xml)
            reason = self._compare_cpu(instance, cpu_xml)
            if reason:
                reasons.append('the %s of %s cannot be given by %s: %s'
                               % (what, instance['name'], self.host, reason))
        return reasons

    def _compare_cpu(self, instance, cpu_xml):
        """None when this host's hypervisor can provide ``cpu_xml``, else why not."""
        try:
            # Against the CPU this host's hypervisor can give a guest (TCG offers less
            # than the silicon, KVM about as much), not against the host CPU itself.
            result = self.conn.compareHypervisorCPU(
                None, instance.get('arch') or platform.machine(), None,
                instance.get('virt_type'), cpu_xml,
                self.libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE)
        except self.libvirt.libvirtError as e:
            return e.get_error_message()
        if result == self.libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
            return 'incompatible'
        return None

    # Shared-storage probe -----------------------------------------------------

    def _probe_path(self, token):
        return os.path.join(self.opts.shared_storage_path, '.vmmig-probe-%s' % token)

    def create_storage_probe(self):
        token = uuid.uuid4().hex
        with open(self._probe_path(token), 'w') as f:
            f.write(self.host)
        return token

    def check_storage_probe(self, token):
        return bool(token) and os.path.exists(self._probe_path(token))

    def remove_storage_probe(self, token):
        try:
            os.unlink(self._probe_path(token))
        except (FileNotFoundError, TypeError):
            pass

    # Live migration -------------------------------------------------------------

    def prepare_live_incoming(self, instance, migration_record):
        created = []
        for disk in instance['disks']:
            if disk['location'] != 'local':
                continue
            path = guest.moved_path(disk['path'], instance['local_storage_path'],
                                    self.opts.local_storage_path)
            if os.path.exists(path):
                raise exception.HypervisorError(
                    host=self.host, reason='%s exists already; not overwriting it' % path)
            # An empty disk of the same size: block migration fills it. The path is
            # absolute and checked; '--' all the same, so qemu-img never reads an option.
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '--', path,
                            str(int(disk['capacity']))], check=True)
            created.append(path)
        return {'host': self.host, 'peer_uri': self.opts.peer_uri or self.opts.uri,
                'migration_uri': self.opts.migration_uri,
                'listen_address': self.opts.migration_listen_address,
                'local_storage_path': self.opts.local_storage_path, 'created': created}

    def live_migrate(self, instance, dest_info, settings):
        dom = self._domain(instance['name'])
        lv = self.libvirt
        local = [d['name'] for d in instance['disks'] if d['location'] == 'local']
        dest_xml = persist_xml = None
        if local:
            # Definitions of our own only where a path moves (local disks): else libvirt
            # sends the source's, and the destination need not parse and check ours
            # (nor this agent ask libvirt twice for a migratable XML, 1-3 ms each).
            dest_xml = self._moved_xml(dom, lv.VIR_DOMAIN_XML_MIGRATABLE, dest_info)
            # The persistent definition the destination keeps: without it libvirt copies
            # the source's, whose local disk paths point at the source host.
            persist_xml = self._moved_xml(
                dom, lv.VIR_DOMAIN_XML_MIGRATABLE | lv.VIR_DOMAIN_XML_INACTIVE, dest_info)
        settings = dict(settings, auto_converge_initial=self.opts.auto_converge_initial,
                        auto_converge_increment=self.opts.auto_converge_increment,
                        shared_storage_proven=instance.get('storage_mode') == 'ephemeral-shared')
        flags, params = migration.flags_and_params(self.libvirt, dest_info, settings,
                                                   dest_xml, local)
        if persist_xml is not None:
            params[lv.VIR_MIGRATE_PARAM_PERSIST_XML] = persist_xml
        self.completed.forget(instance['name'])
        return migration.LibvirtJob(self.libvirt, dom, dest_info['peer_uri'], flags, params,
                                    self.completed)

    def _moved_xml(self, dom, flags, dest_info):
        """The domain XML with local paths moved to the destination's; None if none moved."""
        xml = dom.XMLDesc(flags)
        moved = guest.move_paths(xml, self.opts.local_storage_path,
                                 dest_info['local_storage_path'])
        return moved if moved != xml else None

    def finish_live_incoming(self, instance, migration_record):
        dom = self._domain(instance['name'])
        state, _reason = dom.state()
        # ``instance`` is the VM as the migration started (not the source's copy, shut
        # off by now): it runs here if it ran there.
        if state == self.libvirt.VIR_DOMAIN_PAUSED and instance['power_state'] == 'running':
            dom.resume()  # paused by the timeout action or force-complete
        # QEMU announces an arrived guest by itself; ours repeats it for switches that
        # missed the first packets. It takes a round trip to QEMU's monitor (4 ms or
        # more under TCG) that the migration's end need not wait for.
        threading.Thread(target=self._announce, args=(dom,), daemon=True,
                         name='vmmig-announce-%s' % instance['name']).start()
        # The disks are those the source showed moments ago, sizes unchanged.
        return self._instance(dom, capacities={d['name']: d['capacity'] for d in
                                               instance['disks'] if d.get('capacity')})

    def _announce(self, dom):
        """Tell the network where the guest is now: QEMU sends RARP packets per NIC."""
        try:
            import libvirt_qemu
            libvirt_qemu.qemuMonitorCommand(
                dom, '{"execute": "announce-self", "arguments": {"initial": 50, '
                     '"max": 550, "rounds": 5, "step": 100}}', 0)
        except Exception as e:  # noqa: an old QEMU without announce-self still works
            LOG.warning('announce-self for %s failed: %s', dom.name(), e)

    def rollback_live_incoming(self, instance, migration_record):
        try:
            dom = self.conn.lookupByName(instance['name'])
            if self._incoming(dom):
                dom.destroy()
        except self.libvirt.libvirtError:
            pass
        for disk in instance['disks']:
            if disk['location'] != 'local':
                continue
            try:
                path = guest.moved_path(disk['path'], instance.get('local_storage_path'),
                                        self.opts.local_storage_path)
            except exception.Invalid:
                continue  # prepare_live_incoming refused it: nothing was made for it
            if path != disk['path'] and os.path.exists(path) and not self._in_use(path):
                os.unlink(path)

    def _in_use(self, path):
        """A domain here has ``path`` as a disk (its source, not some text of its XML)."""
        for dom in self.conn.listAllDomains(0):
            try:
                if guest.uses_file(dom.XMLDesc(0), path):
                    return True
            except self.libvirt.libvirtError:
                continue  # it left while we looked
        return False

    def mark_uncertain(self, name):
        dom = self._domain(name)
        if dom.isActive() and dom.state()[0] != self.libvirt.VIR_DOMAIN_PAUSED:
            dom.suspend()

    def cleanup_live_outgoing(self, instance, migration_record):
        try:
            dom = self.conn.lookupByName(instance['name'])
            if not dom.isActive():
                dom.undefineFlags(self.libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        except self.libvirt.libvirtError:
            pass
        for path in guest.local_files(instance):
            # Only files of this host's storage: the paths came with the request.
            if (names.is_under(path, self.opts.local_storage_path) and os.path.exists(path)
                    and not self._in_use(path)):
                os.unlink(path)

    # Power and cold migration ------------------------------------------------------

    def power_off(self, name, graceful_timeout):
        dom = self._domain(name)
        if not dom.isActive():
            return 'already'
        dom.shutdown()
        deadline = time.monotonic() + graceful_timeout
        while time.monotonic() < deadline:
            if not dom.isActive():
                return 'graceful'
            time.sleep(0.5)
        LOG.warning('%s ignored the ACPI power button for %d s; powering it off',
                    name, graceful_timeout)
        dom.destroy()
        return 'forced'

    def power_on(self, name):
        dom = self._domain(name)
        if not dom.isActive():
            dom.create()  # restores the managed save image when there is one

    def suspend(self, name):
        self._domain(name).managedSave(0)

    def _save_path(self, name):
        return os.path.join(self.opts.managed_save_path, '%s.save' % name)

    def cold_export(self, name):
        dom = self._domain(name)
        inst = self._instance(dom)
        if inst['power_state'] not in ('shutoff', 'suspended'):
            raise exception.HypervisorError(
                host=self.host, reason='%s is %s; cold migration needs it shut off or '
                                       'suspended' % (name, inst['power_state']))
        files = [{'id': 'disk:' + d['name'], 'path': d['path'], 'kind': 'disk',
                  'size': os.path.getsize(d['path'])}
                 for d in inst['disks'] if d['location'] == 'local']
        if inst['power_state'] == 'suspended':
            path = self._save_path(name)
            files.append({'id': 'saved_state', 'path': path, 'kind': 'saved_state',
                          'size': os.path.getsize(path)})
        return {'instance': inst, 'files': files}

    def cold_import_paths(self, instance, files):
        paths = {}
        disks = {'disk:' + d['name']: d for d in instance['disks']}
        for f in files:
            if f['id'] == 'saved_state' and f['kind'] == 'saved_state':
                paths[f['id']] = names.safe_path(
                    self.opts.local_storage_path,
                    '%s.incoming-save' % names.check('instance', instance['name']))
            elif f['kind'] == 'disk' and disks.get(f['id'], {}).get('location') == 'local':
                paths[f['id']] = guest.moved_path(disks[f['id']]['path'],
                                                  instance['local_storage_path'],
                                                  self.opts.local_storage_path)
            else:
                raise exception.Invalid(reason='file %r (%r) of %s is neither a local disk '
                                               'of it nor its saved memory'
                                               % (f['id'], f['kind'], instance['name']))
        return paths

    def _checked_definition(self, xml, instance):
        """``xml`` when it may be defined here for ``instance``; InvalidDefinition listing
        every reason otherwise (vmmig.hypervisor.libvirt.definition): it came over RPC
        or from the database, and libvirt would define whatever it names."""
        reasons = definition.problems(
            xml, instance, [self.opts.local_storage_path, self.opts.shared_storage_path],
            self.opts.allowed_paths)
        if reasons:
            raise exception.InvalidDefinition(instance=instance.get('name'), host=self.host,
                                              reasons='; '.join(reasons))
        return xml

    def cold_define(self, instance, files):
        xml = guest.move_paths(instance['xml'], instance.get('local_storage_path'),
                               self.opts.local_storage_path)
        self._checked_definition(xml, instance)
        with self._pci_lock:
            xml = self._assign_pci_devices(instance, xml)
            dom = self.conn.defineXML(xml)
        if instance['power_state'] == 'suspended':
            save = self.cold_import_paths(instance, files)['saved_state']
            try:
                # Restore paused from the copied memory, then save it as this host's
                # managed save image: the VM arrives suspended, as it left. SAVE_RUNNING,
                # else the image records the paused state of this restore and the VM
                # would stay paused when it is started.
                self.conn.restoreFlags(save, xml, self.libvirt.VIR_DOMAIN_SAVE_PAUSED)
                dom.managedSave(self.libvirt.VIR_DOMAIN_SAVE_RUNNING)
            finally:
                os.unlink(save)
        return self._instance(dom)

    def undefine(self, name, delete_local_files):
        try:
            dom = self.conn.lookupByName(name)
        except self.libvirt.libvirtError:
            return
        inst = self._instance(dom)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(self.libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        if delete_local_files:
            for path in guest.local_files(inst):
                if os.path.exists(path):
                    os.unlink(path)

    # Evacuation ----------------------------------------------------------------------

    def rebuild(self, instance):
        """Started again if it ran; defined only (shut off) otherwise. A suspended VM
        stays suspended when its managed save image is here too (managed_save_path on
        shared storage): libvirt finds it by the domain's name once it is defined."""
        dom = self.conn.defineXML(self._checked_definition(instance['xml'], instance))
        if instance['power_state'] == 'running':
            dom.create()
        elif instance['power_state'] != 'suspended' and dom.hasManagedSaveImage(0):
            # Not saved when the host died: an older image must not bring back old memory.
            dom.managedSaveRemove(0)
        return self._instance(dom)


def _os_version():
    try:
        with open('/etc/os-release') as f:
            fields = dict(line.strip().split('=', 1) for line in f if '=' in line)
        return fields.get('PRETTY_NAME', '').strip('"')
    except OSError:
        return platform.platform()
