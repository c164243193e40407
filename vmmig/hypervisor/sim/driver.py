"""The simulated hypervisor: one modelled host per agent, state kept on disk.

Host and VM figures come from the cluster file ([sim] cluster_file); what an
agent changes (VMs arriving, leaving, powering off) is kept in
``<state_path>/sim/hosts/<host>.json`` so it survives restarts. Local disks and
saved memory images are small real files, so cold migration exercises the
real agent-to-agent copy; shared storage is a real directory per storage name,
so the shared-storage probe is real too. Live migration runs the pre-copy
model of :mod:`vmmig.hypervisor.sim.precopy`.
"""

import collections
import copy
import fcntl
import hashlib
import json
import os
import threading
import uuid

from vmmig.hypervisor import base
from vmmig.hypervisor import pci
from vmmig.hypervisor.sim import clock as sim_clock
from vmmig.hypervisor.sim import cluster
from vmmig.hypervisor.sim import precopy
from vmmig import exception
from vmmig import names
from vmmig.storage import base as storage

MiB = 1024 * 1024
# The modelled disk is GiBs; the file standing for it is this big.
SIM_FILE_BYTES = 64 * 1024


class SimJob(base.MigrationJob):
    """A pre-copy job of the model, advanced by the monitor's waits."""

    def __init__(self, job, clock, on_end=None):
        self._job = job
        self._clock = clock
        self._on_end = on_end

    def wait(self, interval):
        self._job.run_until(self._clock.now() + interval)
        if self._job.done and self._on_end:
            callback, self._on_end = self._on_end, None
            callback(self._job.status)
        return self._job.done

    def stats(self):
        return self._job.stats()

    @property
    def status(self):
        return self._job.status

    @property
    def error(self):
        return self._job.error

    def abort(self):
        if not self._job.done:
            self._job.abort()

    def set_max_downtime(self, milliseconds):
        self._job.set_max_downtime(milliseconds / 1000.0)

    def start_postcopy(self):
        try:
            self._job.start_postcopy()
        except precopy.MigrationError as e:
            raise exception.Invalid(reason=str(e))

    def pause_guest(self):
        # A paused guest dirties nothing: the next boundary fits the downtime.
        self._job.settings.dirty_rate = 0
        self._job.settings.max_downtime = max(self._job.settings.max_downtime, 3600.0)

    def set_bandwidth(self, mib_per_s):
        self._job.set_bandwidth(mib_per_s * MiB)


class SimDriver(base.HypervisorDriver):
    #: what the model can do; a host of the cluster file may take some away
    supported = {'live_migration': True, 'post_copy': True, 'auto_converge': True,
                 'block_migration': True, 'announce': True}

    def __init__(self, conf, host):
        super().__init__(conf, host)
        # Every look at or change of _instances and _volumes is made under this lock: it
        # reads the state file again first (see HostStateLock).
        self._lock = HostStateLock(self)
        # One power operation at a time per VM: a start asked while a shutdown is under
        # way (a conductor rolling back what a dead one began) comes after it.
        self._power_locks = {}
        self._root = os.path.join(os.path.expanduser(conf.state_path), 'sim')
        self._state_file = os.path.join(self._root, 'hosts',
                                        names.check('host', host) + '.json')
        self._spec = None
        self._instances = None
        # volume id -> instance name, for every volume connected to this host
        self._volumes = None
        self.clock = (sim_clock.VirtualClock() if conf.sim.clock == 'virtual'
                      else sim_clock.ScaledClock(conf.sim.time_scale))

    # Set-up and persistence ----------------------------------------------

    def validate(self):
        spec = cluster.load(self.conf.sim.cluster_file)
        if self.host not in spec['hosts']:
            raise exception.InvalidOption(
                option='host', value=self.host,
                reason='the simulated cluster has no such host; hosts: %s'
                       % ', '.join(sorted(spec['hosts'])))
        return spec

    def init_host(self):
        spec = self.validate()
        self._spec = spec['hosts'][self.host]
        os.makedirs(os.path.dirname(self._state_file), exist_ok=True)
        os.makedirs(self._local_dir(), exist_ok=True)
        if self._spec.get('shared_storage'):
            os.makedirs(self._shared_dir(), exist_ok=True)
        # Another process (a second embedded CLI command) may start this host at the same
        # moment: one of them writes the first state, the other reads it.
        with self._lock:
            if self._instances is not None:
                if os.path.exists(self.fenced_path()):
                    # A fenced host was powered off: nothing it had is running any more.
                    for inst in self._instances.values():
                        if inst['power_state'] in ('running', 'paused'):
                            inst['power_state'] = 'shutoff'
                    self._save()
                    os.unlink(self.fenced_path())
            else:
                self._instances = {n: i for n, i in spec['instances'].items()
                                   if i['host'] == self.host}
                for inst in self._instances.values():
                    self._materialise(inst)
                self._volumes = self._volumes_of(self._instances.values())
                self._save()

    def _load(self):
        """Read the state file into memory: the last word of whichever process wrote it.
        Called with the lock file held (HostStateLock)."""
        try:
            with open(self._state_file) as f:
                saved = json.load(f)
        except FileNotFoundError:
            return
        self._instances = saved['instances']
        self._volumes = saved.get('volumes')
        if self._volumes is None:
            self._volumes = self._volumes_of(self._instances.values())

    def _save(self):
        """Write the state file whole or not at all: a temporary file, flushed to the
        disk, then renamed over it. Called with the lock file held."""
        tmp = self._state_file + '.tmp'
        with open(tmp, 'w') as f:
            # On one line: json's C encoder does not indent, and 100 simulated agents in
            # a few processes write these after every step.
            f.write(json.dumps({'host': self.host, 'instances': self._instances,
                                'volumes': self._volumes}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_file)

    def cleanup_host(self):
        self._lock.close()

    @staticmethod
    def _volumes_of(instances):
        return {d['volume']: inst['name'] for inst in instances for d in inst['disks']
                if d['location'] == storage.VOLUME}

    def _check_volumes_connected(self, instance):
        """A VM cannot be defined here before its volumes are reachable from here."""
        missing = sorted(v for v in self._volumes_of([instance]) if v not in self._volumes)
        if missing:
            raise exception.HypervisorError(
                host=self.host, reason='volume(s) %s of %s are not connected here'
                                       % (', '.join(missing), instance['name']))

    def _local_dir(self):
        return os.path.join(self._root, 'local', self.host)

    def _shared_dir(self):
        return os.path.join(self._root, 'shared', self._spec['shared_storage'])

    def _disk_path(self, inst, disk):
        """Where the file of a local or shared disk of ``inst`` is: made here from the
        checked names, never taken from a caller (a path in an RPC argument could
        name any file the agent can write)."""
        base_dir = self._local_dir() if disk['location'] == storage.LOCAL \
            else self._shared_dir()
        return names.safe_path(base_dir, '%s-%s.img' % (names.check('instance', inst['name']),
                                                        names.check('disk', disk['name'])))

    def _saved_state_path(self, name):
        return names.safe_path(self._local_dir(), '%s.save' % names.check('instance', name))

    def _materialise(self, inst):
        """Give every local or shared disk (and a saved memory image) a real file."""
        for disk in inst['disks']:
            if disk['location'] == storage.VOLUME:
                continue
            disk['path'] = self._disk_path(inst, disk)
            if not os.path.exists(disk['path']):
                _write_pattern(disk['path'], '%s/%s' % (inst['name'], disk['name']))
        if inst['power_state'] == 'suspended':
            self._write_saved_state(inst)

    def _write_saved_state(self, inst):
        path = self._saved_state_path(inst['name'])
        if not os.path.exists(path):
            _write_pattern(path, 'memory of %s' % inst['name'])
        inst['saved_state'] = path

    # Inventory -----------------------------------------------------------

    @property
    def capabilities(self):
        return dict(self.supported, **((self._spec or {}).get('capabilities') or {}))

    def _pci_devices(self, insts):
        """The host's passthrough devices, each with the VM holding it (or None)."""
        holders = {a: i['name'] for i in insts for a in i.get('pci_devices') or ()}
        return [dict(d, instance=holders.get(d['address'])) for d in self._spec['pci_devices']]

    def _vgpus(self, insts):
        used = collections.Counter(t for i in insts for t in i.get('vgpus') or ())
        return {t: {'total': n, 'free': max(n - used[t], 0)}
                for t, n in self._spec['vgpus'].items()}

    def host_facts(self):
        with self._lock:
            insts = list(self._instances.values())
        spec = self._spec
        facts = {k: copy.deepcopy(spec[k]) for k in (
            'vcpus', 'memory_mb', 'disk_gb', 'cpu_model', 'cpu_vendor', 'cpu_features',
            'os_version', 'hypervisor_type', 'hypervisor_version', 'cluster',
            'shared_storage')}
        facts.update(
            pci_devices=self._pci_devices(insts),
            vgpus=self._vgpus(insts),
            capabilities=self.capabilities,
            host=self.host,
            vcpus_used=sum(i['vcpus'] for i in insts),
            memory_mb_used=sum(i['memory_mb'] for i in insts),
            disk_gb_used=sum(d['size_gb'] for i in insts for d in i['disks']
                             if d['location'] == storage.LOCAL),
            link_bandwidth=int(spec['link_gbps'] * 1e9 / 8),
            hypervisor='sim')
        return facts

    def _public(self, inst):
        out = copy.deepcopy(inst)
        out['host'] = self.host
        out['storage_mode'] = storage.storage_mode_of(inst['disks'])
        # The kind of each passthrough device, so that a destination can give a like one.
        products = {d['address']: d['product'] for d in self._spec['pci_devices']}
        out['pci_products'] = {a: products.get(a) for a in inst.get('pci_devices') or ()}
        out.pop('incoming', None)
        return out

    def list_instances(self):
        with self._lock:
            return [self._public(i) for i in self._instances.values()
                    if not i.get('incoming')]

    def get_instance(self, name):
        with self._lock:
            inst = self._instances.get(name)
            if inst is None or inst.get('incoming'):
                raise exception.InstanceNotFound(instance=name)
            return self._public(inst)

    def check_cpu_compatible(self, instance, source_facts):
        reasons = []
        if source_facts.get('cpu_vendor') != self._spec['cpu_vendor']:
            reasons.append('CPU vendor %s differs from %s on %s' % (
                self._spec['cpu_vendor'], source_facts.get('cpu_vendor'),
                source_facts.get('host')))
        needed = set(instance.get('cpu_features') or source_facts.get('cpu_features') or [])
        missing = sorted(needed - set(self._spec['cpu_features']))
        if missing:
            reasons.append('CPU of %s lacks feature(s) the guest uses: %s'
                           % (self.host, ', '.join(missing)))
        return reasons

    # Shared-storage probe -------------------------------------------------

    def create_storage_probe(self):
        if not self._spec.get('shared_storage'):
            return None
        token = uuid.uuid4().hex
        with open(os.path.join(self._shared_dir(), '.probe-' + token), 'w') as f:
            f.write(self.host)
        return token

    def check_storage_probe(self, token):
        if not token or not self._spec.get('shared_storage'):
            return False
        return os.path.exists(os.path.join(self._shared_dir(), '.probe-' + token))

    def remove_storage_probe(self, token):
        if token and self._spec.get('shared_storage'):
            try:
                os.unlink(os.path.join(self._shared_dir(), '.probe-' + token))
            except FileNotFoundError:
                pass

    # Live migration -------------------------------------------------------

    def prepare_live_incoming(self, instance, migration):
        with self._lock:
            inst = self._arrival(instance)
            inst['incoming'] = True
            inst['power_state'] = 'paused'
            self._instances[inst['name']] = inst
            self._save()
        return {'host': self.host, 'link_bandwidth': self.host_facts()['link_bandwidth']}

    def _arrival(self, instance):
        """The copy a VM arriving here gets; refused if one is here already (never two)."""
        if instance['name'] in self._instances:
            raise exception.HypervisorError(
                host=self.host, reason='%s is already defined here' % instance['name'])
        self._check_volumes_connected(instance)
        self._check_vgpus_free(instance)
        return self._incoming_copy(instance)

    def _check_vgpus_free(self, instance):
        """The scheduler saw a free vGPU in the facts; under the lock it must still be."""
        wanted = collections.Counter(instance.get('vgpus') or ())
        vgpus = self._vgpus(self._instances.values())
        short = ['%s (%d free, %d needed)' % (t, vgpus.get(t, {}).get('free', 0), n)
                 for t, n in sorted(wanted.items()) if vgpus.get(t, {}).get('free', 0) < n]
        if short:
            raise exception.HypervisorError(
                host=self.host, reason='no free vGPU for %s of type %s'
                                       % (instance['name'], ', '.join(short)))

    def _assign_pci_devices(self, inst, instance):
        """Give each passthrough device of a VM defined here a free one of the same kind
        (under the lock: no device is given twice)."""
        if not inst.get('pci_devices'):
            return
        chosen = pci.choose_free(self.host, inst['name'], inst['pci_devices'],
                                 instance.get('pci_products') or {},
                                 self._pci_devices(self._instances.values()))
        inst['pci_devices'] = [chosen[a] for a in inst['pci_devices']]

    def _incoming_copy(self, instance):
        inst = {k: copy.deepcopy(v) for k, v in instance.items()
                if k not in ('host', 'storage_mode', 'saved_state', 'pci_products')}
        for disk in inst['disks']:
            if disk['location'] == storage.LOCAL:
                disk['path'] = self._disk_path(inst, disk)
        return inst

    def live_migrate(self, instance, dest_info, settings):
        with self._lock:
            inst = self._instances.get(instance['name'])
            if inst is None or inst['power_state'] not in ('running', 'paused'):
                raise exception.HypervisorError(
                    host=self.host, reason='%s is not running here' % instance['name'])
        workload = inst.get('workload') or {}
        ram = inst['memory_mb'] * MiB
        disk_bytes = 0
        if settings.get('block_migration'):
            disk_bytes = sum(d['size_gb'] for d in inst['disks']
                             if d['location'] == storage.LOCAL) * 1024 * MiB
        dirty = 0 if inst['power_state'] == 'paused' else workload.get('dirty_rate_mbps', 0)
        model = precopy.PrecopySettings(
            ram_bytes=ram,
            wws_bytes=min(ram, workload.get('wws_mb', 64) * MiB),
            dirty_rate=dirty * MiB,
            bandwidth=min(self.host_facts()['link_bandwidth'], dest_info['link_bandwidth']),
            bandwidth_cap=(settings['bandwidth_mibps'] * MiB
                           if settings.get('bandwidth_mibps') else None),
            max_downtime=settings['max_downtime_ms'] / 1000.0,
            disk_bytes=disk_bytes,
            auto_converge=bool(settings.get('auto_converge')),
            postcopy_permitted=bool(settings.get('post_copy')),
            jitter=self.conf.sim.jitter, seed=self.conf.sim.seed)
        job = precopy.PrecopyJob(model, self.clock)
        if workload.get('link_loss_at') is not None:
            job.fail_at(workload['link_loss_at'], 'link to %s lost' % dest_info['host'])
        return SimJob(job, self.clock,
                      on_end=lambda status: self._source_after_job(instance['name'], status))

    def _source_after_job(self, name, status):
        """Like QEMU: once the guest went over, the source copy never runs again by
        itself. Stopped after a completed job; paused and stale after a broken post-copy
        (the guest ran on the destination meanwhile)."""
        if status not in (precopy.COMPLETED, precopy.POSTCOPY_FAILED):
            return
        with self._lock:
            inst = self._instances.get(name)
            if inst is not None:
                if status == precopy.COMPLETED:
                    inst['power_state'] = 'shutoff'
                    inst['migrated'] = True
                else:
                    inst['power_state'] = 'paused'
                    inst['postcopy_failed'] = True
                self._save()

    def finish_live_incoming(self, instance, migration):
        with self._lock:
            inst = self._instances[instance['name']]
            inst.pop('incoming', None)
            # ``instance`` is the VM as the migration started: a guest paused by the
            # timeout action or by post-copy resumes here; one the operator had paused
            # before the migration stays paused.
            inst['power_state'] = ('running' if instance['power_state'] == 'running'
                                   else 'paused')
            self._save()
            return self._public(inst)

    def rollback_live_incoming(self, instance, migration):
        with self._lock:
            inst = self._instances.get(instance['name'])
            if inst is not None and inst.get('incoming'):
                self._remove(inst, delete_local_files=True)

    def mark_uncertain(self, name):
        """A broken post-copy: the VM stays paused here, the source copy is gone."""
        with self._lock:
            inst = self._instances[name]
            inst.pop('incoming', None)
            inst['power_state'] = 'paused'
            self._save()

    def cleanup_live_outgoing(self, instance, migration):
        self.undefine(instance['name'], delete_local_files=True)

    def _remove(self, inst, delete_local_files):
        if delete_local_files:
            paths = [d.get('path') for d in inst['disks'] if d['location'] == storage.LOCAL]
            paths.append(inst.get('saved_state'))
            for path in filter(None, paths):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        del self._instances[inst['name']]
        self._save()

    # Volumes ---------------------------------------------------------------

    def connect_volumes(self, instance):
        with self._lock:
            self._volumes.update(self._volumes_of([instance]))
            self._save()

    def disconnect_volumes(self, instance):
        with self._lock:
            for volume in self._volumes_of([instance]):
                if self._volumes.get(volume) == instance['name']:
                    del self._volumes[volume]
            self._save()

    def connected_volumes(self):
        with self._lock:
            return dict(self._volumes)

    # Power and cold migration ----------------------------------------------

    def _get(self, name):
        inst = self._instances.get(name)
        if inst is None or inst.get('incoming'):
            raise exception.InstanceNotFound(instance=name)
        return inst

    def _power_lock(self, name):
        return self._power_locks.setdefault(name, threading.Lock())  # atomic

    def power_off(self, name, graceful_timeout):
        with self._power_lock(name):
            with self._lock:
                inst = self._get(name)
                ignores_acpi = (inst.get('workload') or {}).get('ignores_acpi')
            # A guest that ignores ACPI is powered off by force once the time is up. The
            # wait is the guest's, not the host's: heartbeats and other VMs go on.
            self.clock.sleep(graceful_timeout if ignores_acpi else 1.0)
            with self._lock:
                inst = self._get(name)
                inst['power_state'] = 'shutoff'
                self._save()
                return 'forced' if ignores_acpi else 'graceful'

    def power_on(self, name):
        with self._power_lock(name), self._lock:
            inst = self._get(name)
            if inst['power_state'] == 'suspended':
                path = inst.pop('saved_state', None)
                if path and os.path.exists(path):
                    os.unlink(path)
            inst['power_state'] = 'running'
            self._save()

    def suspend(self, name):
        with self._lock:
            inst = self._get(name)
            self._write_saved_state(inst)
            inst['power_state'] = 'suspended'
            self._save()

    def cold_export(self, name):
        with self._lock:
            inst = self._get(name)
            if inst['power_state'] not in ('shutoff', 'suspended'):
                raise exception.HypervisorError(
                    host=self.host, reason='%s is %s; cold migration needs it shut off '
                                           'or suspended' % (name, inst['power_state']))
            files = [{'id': 'disk:' + d['name'], 'path': d['path'], 'kind': 'disk',
                      'size': os.path.getsize(d['path'])}
                     for d in inst['disks'] if d['location'] == storage.LOCAL]
            if inst['power_state'] == 'suspended':
                files.append({'id': 'saved_state', 'path': inst['saved_state'],
                              'kind': 'saved_state',
                              'size': os.path.getsize(inst['saved_state'])})
            return {'instance': self._public(inst), 'files': files}

    def cold_import_paths(self, instance, files):
        paths = {}
        disks = {'disk:' + d['name']: d for d in instance['disks']
                 if d['location'] == storage.LOCAL}
        for f in files:
            if f['id'] == 'saved_state' and f['kind'] == 'saved_state':
                paths[f['id']] = self._saved_state_path(instance['name'])
            elif f['id'] in disks and f['kind'] == 'disk':
                paths[f['id']] = self._disk_path(instance, disks[f['id']])
            else:
                raise exception.Invalid(reason='file %r (%r) of %s is neither a local disk '
                                               'of it nor its saved memory'
                                               % (f['id'], f['kind'], instance['name']))
        return paths

    def cold_define(self, instance, files):
        with self._lock:
            inst = self._arrival(instance)
            paths = self.cold_import_paths(instance, files)
            for f in files:
                if not os.path.exists(paths[f['id']]):
                    raise exception.HypervisorError(
                        host=self.host, reason='file %s of %s was not received'
                                               % (f['id'], instance['name']))
            if instance['power_state'] == 'suspended':
                inst['saved_state'] = paths['saved_state']
            self._assign_pci_devices(inst, instance)
            self._instances[inst['name']] = inst
            self._save()
            return self._public(inst)

    def undefine(self, name, delete_local_files):
        with self._lock:
            inst = self._instances.get(name)
            if inst is not None:
                self._remove(inst, delete_local_files)

    # Evacuation ------------------------------------------------------------

    def rebuild(self, instance):
        """Running again if it ran; any other VM arrives shut off: a paused one's memory
        was in the dead host's RAM, a suspended one's saved memory on its local storage."""
        with self._lock:
            inst = self._arrival(instance)
            inst['power_state'] = 'running' if instance['power_state'] == 'running' \
                else 'shutoff'
            self._instances[inst['name']] = inst
            self._save()
            return self._public(inst)

    # Fencing ---------------------------------------------------------------

    def fenced_path(self):
        return os.path.join(self._root, 'hosts', self.host + '.fenced')


class HostStateLock(object):
    """One host's state, held by one thread of one process at a time.

    Every embedded CLI command runs a driver for every simulated host, so two
    commands at once hold two copies of the same host in memory. A thread lock
    orders this process's threads; an flock on ``<host>.lock`` beside the state
    file orders the processes. The outermost entry reads the file again, so a
    change builds on the other process's last write instead of overwriting it.
    Re-entrant, like the RLock it replaces (a step may call another).
    """

    def __init__(self, driver):
        self._driver = driver
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd = None

    def _lock_file(self):
        if self._fd is None:
            path = os.path.splitext(self._driver._state_file)[0] + '.lock'
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def __enter__(self):
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                fd = self._lock_file()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    self._driver._load()
                except BaseException:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    raise
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self):
        with self._thread_lock:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None


def _write_pattern(path, seed):
    """A deterministic content that stands for a disk, so copies can be checksummed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    block = hashlib.sha256(seed.encode()).digest()
    with open(path, 'wb') as f:
        f.write(block * (SIM_FILE_BYTES // len(block)))
