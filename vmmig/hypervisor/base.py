"""The contract between a host agent and the hypervisor it drives.

An agent owns exactly one driver, for exactly one host. Everything crossing
this boundary is plain data (dicts of JSON primitives), because the agent
sends most of it over RPC unchanged.

Instance dict (what ``list_instances``/``get_instance`` return)::

    name, uuid, vcpus, memory_mb, power_state ('running' | 'paused' |
    'suspended' | 'shutoff'), storage_mode (see vmmig.storage.base.storage_mode_of),
    disks: [{'name', 'size_gb', 'location' ('local' | 'shared' | 'volume'),
             'path' or 'volume'}],
    pci_devices: [address, ...]   # passthrough: a cold migration gives each a free
                                  # device of the same kind on the destination
    pci_products: {address: 'vendor:product' id or None}   # the kind of each
    vgpus: [type, ...]            # mediated devices: the destination needs a free one
                                  # of each type
    cpu_model, cpu_features: [...] (what the guest CPU needs),
    workload: {'dirty_rate_mbps', 'wws_mb'} (simulator only)

Host facts dict (``host_facts``)::

    host, vcpus, vcpus_used, memory_mb, memory_mb_used, disk_gb, disk_gb_used,
    cpu_model, cpu_vendor, cpu_features, os_version, hypervisor_type,
    hypervisor_version, cluster, link_bandwidth (bytes/s), shared_storage (an
    identifier of the instances storage this host mounts, or None),
    pci_devices: [{'address' ('0000:3b:00.0'), 'type' ('pci'), 'product' (the kind:
                   'vendor:product' id, '10de:1db6', or None when unknown),
                   'assignable' (the host can pass it through), 'instance' (the VM
                   holding it, or None: free)}],
    vgpus: {vGPU type: {'total', 'free'}},
    capabilities: the driver's ``capabilities`` (an agent older than this field
                  sends none, and is not judged on them)

``os_version`` names the distribution, then its version ("Ubuntu 22.04.4 LTS",
"Debian GNU/Linux 12 (bookworm)"): the os_version filter compares the
distribution and the first two numbers of the version.
"""

import abc

# Job statuses, the same for every driver.
JOB_RUNNING = 'running'
JOB_COMPLETED = 'completed'
JOB_FAILED = 'failed'
JOB_CANCELLED = 'cancelled'
JOB_POSTCOPY_FAILED = 'postcopy-failed'


class MigrationJob(abc.ABC):
    """A live migration under way on the source host.

    ``stats()`` uses libvirt's job statistics keys (time_elapsed, downtime,
    memory_total, memory_processed, memory_remaining, memory_dirty_rate,
    memory_iteration, disk_total, disk_processed, disk_remaining,
    auto_converge_throttle, data_total, data_remaining, postcopy) so that one
    monitor drives every driver.
    """

    @abc.abstractmethod
    def wait(self, interval):
        """Let the job run up to ``interval`` seconds of its clock; True once it is done."""

    @abc.abstractmethod
    def stats(self):
        """The job statistics now."""

    @property
    @abc.abstractmethod
    def status(self):
        """One of the JOB_* statuses."""

    @property
    def error(self):
        return None

    @abc.abstractmethod
    def abort(self):
        """Cancel pre-copy; the guest keeps running on the source."""

    @abc.abstractmethod
    def set_max_downtime(self, milliseconds):
        """Allow a longer (or shorter) blackout."""

    def start_postcopy(self):
        raise NotImplementedError('post-copy is not supported by this driver')

    def pause_guest(self):
        """Stop the guest so that the rest of its memory goes across at once."""
        raise NotImplementedError('pausing is not supported by this driver')

    def set_bandwidth(self, mib_per_s):
        raise NotImplementedError('bandwidth changes are not supported by this driver')


class HypervisorDriver(abc.ABC):
    """One hypervisor host.

    ``capabilities`` says what the driver supports; the agent reports it in the
    host facts and the conductor refuses a request that needs a capability the
    source or destination lacks (the migration type says what it needs: see
    MigrationType.required_capabilities). ``live_migration``: a running VM can
    move; ``block_migration``: its local disks are copied while it runs;
    ``post_copy`` and ``auto_converge``: the live migration options of those
    names; ``announce``: the arrived guest is announced to the network again.
    """

    capabilities = {
        'live_migration': True,
        'post_copy': False,
        'auto_converge': False,
        'block_migration': False,
        'announce': False,
    }

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    def validate(self):
        """Check configuration cheaply; raise InvalidOption naming the option."""

    def init_host(self):
        """Connect to the hypervisor; called once when the agent starts."""

    def cleanup_host(self):
        """Release connections; called when the agent stops."""

    # Inventory -----------------------------------------------------------

    @abc.abstractmethod
    def host_facts(self):
        """The host facts dict (see the module docstring)."""

    @abc.abstractmethod
    def list_instances(self):
        """Instance dicts of every VM defined on this host."""

    @abc.abstractmethod
    def get_instance(self, name):
        """The instance dict, or raise InstanceNotFound."""

    # Checks that need this host's own view -------------------------------

    def check_cpu_compatible(self, instance, source_facts):
        """On the destination: reasons the guest CPU cannot run here ([] if it can)."""
        return []

    @abc.abstractmethod
    def create_storage_probe(self):
        """On the source: leave a marker on the shared instances storage; return its token."""

    @abc.abstractmethod
    def check_storage_probe(self, token):
        """On the destination: True when the marker of ``token`` is visible here."""

    @abc.abstractmethod
    def remove_storage_probe(self, token):
        """On the source: remove the marker."""

    # Live migration ------------------------------------------------------

    @abc.abstractmethod
    def prepare_live_incoming(self, instance, migration):
        """On the destination: make room (disks to copy into, volumes connected).

        Returns the dict the source needs to reach this host.
        """

    @abc.abstractmethod
    def live_migrate(self, instance, dest_info, settings):
        """On the source: start pre-copy to ``dest_info``; return a MigrationJob.

        ``settings``: max_downtime_ms, bandwidth_mibps, auto_converge,
        post_copy (permitted), block_migration (copy local disks).
        """

    @abc.abstractmethod
    def finish_live_incoming(self, instance, migration):
        """On the destination after success: the VM runs here; announce it.

        ``instance``: the VM as it was when the migration started. Its power_state is
        what the VM must be here: a guest paused on the way (the timeout action,
        post-copy) resumes when it was running, one paused before stays paused.
        """

    @abc.abstractmethod
    def rollback_live_incoming(self, instance, migration):
        """On the destination after failure: remove what prepare made (never a shared disk)."""

    @abc.abstractmethod
    def cleanup_live_outgoing(self, instance, migration):
        """On the source after success: remove its definition and local disks."""

    # Volumes -------------------------------------------------------------

    def connect_volumes(self, instance):
        """Attach the instance's volumes to this host (before the VM arrives)."""

    def disconnect_volumes(self, instance):
        """Detach the instance's volumes from this host (after the VM left)."""

    # Power and cold migration --------------------------------------------

    @abc.abstractmethod
    def power_off(self, name, graceful_timeout):
        """Shut the VM down, gracefully for up to ``graceful_timeout`` s, then by force."""

    @abc.abstractmethod
    def power_on(self, name):
        """Start a shut-off VM, or restore a suspended one from its saved memory."""

    @abc.abstractmethod
    def cold_export(self, name):
        """The VM is not running: return ``{'instance': dict, 'files': [file dict]}``.

        A file dict is ``{'id', 'path', 'size', 'kind' ('disk'|'saved_state')}``
        naming local files the destination needs (shared disks and volumes are
        not listed: they are reached from there already).
        """

    @abc.abstractmethod
    def cold_import_paths(self, instance, files):
        """On the destination: ``{file id: local path}`` where each file goes."""

    @abc.abstractmethod
    def cold_define(self, instance, files):
        """On the destination: define the VM (in the power state it had) from the files received.

        Each PCI passthrough device of the VM is given a free one of the same kind
        (``pci_products``) here, chosen under a lock so that no device goes to two
        VMs; none free: HypervisorError, and nothing is defined.
        """

    @abc.abstractmethod
    def undefine(self, name, delete_local_files):
        """Forget the VM here; delete its local files when asked (never shared ones)."""

    # Evacuation ----------------------------------------------------------

    @abc.abstractmethod
    def rebuild(self, instance):
        """On a healthy host: define the VM of a dead host from shared disks/volumes.

        Started only if it was running; otherwise shut off, or suspended when the
        driver can restore its saved memory here. The returned power state says
        which (the evacuation records what was lost)."""
