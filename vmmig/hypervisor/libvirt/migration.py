"""A libvirt live migration: migrateToURI3 in a thread, followed through job statistics.

Peer-to-peer (the source daemon talks to the destination daemon itself),
persistent on the destination, and the source definition removed by libvirt
only once the destination runs the guest.
"""

import logging
import threading

from vmmig.hypervisor import base

LOG = logging.getLogger(__name__)

STAT_KEYS = ('type', 'time_elapsed', 'downtime', 'memory_total', 'memory_processed',
             'memory_remaining', 'memory_dirty_rate', 'memory_iteration', 'memory_bps',
             'memory_page_size', 'disk_total', 'disk_processed', 'disk_remaining',
             'data_total', 'data_processed', 'data_remaining', 'auto_converge_throttle')


def flags_and_params(libvirt, dest_info, settings, dest_xml, local_disks):
    flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
             | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    params = {libvirt.VIR_MIGRATE_PARAM_URI: dest_info['migration_uri']}
    if dest_xml is not None:
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = dest_xml
    if dest_info.get('listen_address'):
        params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = dest_info['listen_address']
    if settings.get('block_migration') and local_disks:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = local_disks
        params[libvirt.VIR_MIGRATE_PARAM_DISKS_URI] = dest_info['migration_uri']
    elif settings.get('shared_storage_proven'):
        # libvirt only trusts cluster filesystems it recognises; vmmig proved the
        # storage is shared with a probe file, so it tells libvirt not to worry.
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    if settings.get('auto_converge'):
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = settings.get(
            'auto_converge_initial', 20)
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = settings.get(
            'auto_converge_increment', 10)
    if settings.get('post_copy'):
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if settings.get('bandwidth_mibps'):
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(settings['bandwidth_mibps'])
    return flags, params


class LibvirtJob(base.MigrationJob):

    def __init__(self, libvirt, dom, peer_uri, flags, params, completed_stats):
        """Starts the migration; the allowed downtime is the monitor's to set."""
        self._libvirt = libvirt
        self._dom = dom
        self._completed_stats = completed_stats  # filled by the JOB_COMPLETED event
        self._status = base.JOB_RUNNING
        self._error = None
        self._aborted = False
        self._postcopy = False
        self._last = {}
        self._final = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._migrate, args=(peer_uri, params, flags),
                                        name='vmmig-libvirt-%s' % dom.name(), daemon=True)
        self._thread.start()

    def _migrate(self, peer_uri, params, flags):
        try:
            self._dom.migrateToURI3(peer_uri, params, flags)
            status, error = base.JOB_COMPLETED, None
        except self._libvirt.libvirtError as e:
            error = e.get_error_message()
            if self._postcopy:
                status = base.JOB_POSTCOPY_FAILED
            elif self._aborted:
                status = base.JOB_CANCELLED
            else:
                status = base.JOB_FAILED
        with self._lock:
            self._status, self._error = status, error

    def wait(self, interval):
        self._thread.join(interval)
        return not self._thread.is_alive()

    @property
    def status(self):
        with self._lock:
            return self._status

    @property
    def error(self):
        with self._lock:
            return self._error

    def stats(self):
        status = self.status
        if status != base.JOB_RUNNING:
            with self._lock:
                if self._final is None:
                    # Only a completed job has a JOB_COMPLETED event to wait for; it
                    # usually comes with the API's return, and once is enough.
                    final = (self._completed_stats.wait_for(self._dom.name(), timeout=2.0)
                             if status == base.JOB_COMPLETED else None)
                    self._final = dict(self._last, **(final or {}))
                    self._final['postcopy'] = self._postcopy
                return dict(self._final)
        try:
            raw = self._dom.jobStats(0)
        except self._libvirt.libvirtError:
            return dict(self._last, postcopy=self._postcopy)
        if raw.get('type', 0) != 0:
            self._last = {k: raw[k] for k in STAT_KEYS if k in raw}
        return dict(self._last, postcopy=self._postcopy)

    def abort(self):
        self._aborted = True
        self._dom.abortJob()

    def set_max_downtime(self, milliseconds):
        self._dom.migrateSetMaxDowntime(int(milliseconds), 0)

    def start_postcopy(self):
        self._dom.migrateStartPostCopy(0)
        self._postcopy = True

    def pause_guest(self):
        self._dom.suspend()

    def set_bandwidth(self, mib_per_s):
        self._dom.migrateSetMaxSpeed(int(mib_per_s), 0)


class CompletedStats(object):
    """Final job statistics from VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, by domain name.

    After a successful migration the source domain is gone, so its figures
    (downtime above all) arrive only with this event.
    """

    def __init__(self):
        self._stats = {}
        self._cond = threading.Condition()

    def record(self, name, params):
        with self._cond:
            self._stats[name] = {k: params[k] for k in STAT_KEYS if k in params}
            self._cond.notify_all()

    def forget(self, name):
        with self._cond:
            self._stats.pop(name, None)

    def wait_for(self, name, timeout):
        with self._cond:
            self._cond.wait_for(lambda: name in self._stats, timeout)
            return self._stats.get(name)
