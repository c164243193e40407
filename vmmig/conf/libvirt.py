from oslo_config import cfg

libvirt_group = cfg.OptGroup('libvirt', title='libvirt hypervisor',
                             help='The "libvirt" hypervisor driver.')

libvirt_opts = [
    cfg.StrOpt('uri', default='qemu:///system',
               help='libvirt URI of the local daemon this agent drives.'),
    cfg.StrOpt('migration_uri', default='tcp://127.0.0.1',
               help='Address QEMU migration data flows to (VIR_MIGRATE_PARAM_URI); '
                    'the destination agent publishes it.'),
    cfg.StrOpt('migration_listen_address', default='127.0.0.1',
               help='Address the destination QEMU listens on for migration data.'),
    cfg.StrOpt('peer_uri',
               help='libvirt URI by which a peer host reaches this host\'s daemon '
                    '(peer-to-peer migration). Unset means the same as uri.'),
    cfg.StrOpt('shared_storage_path', default='/var/lib/vmmig/instances',
               help='Directory of the instances storage, shared by the hosts that '
                    'share storage.'),
    cfg.StrOpt('local_storage_path', default='/var/lib/vmmig/local',
               help='Directory for disks local to this host.'),
    cfg.StrOpt('os_version',
               help='Operating system version this host reports. Unset means read '
                    'from /etc/os-release.'),
    cfg.StrOpt('managed_save_path', default='/var/lib/libvirt/qemu/save',
               help='Directory where the libvirt daemon keeps managed save images '
                    '(the memory of suspended VMs), as this agent sees it.'),
    cfg.ListOpt('allowed_paths',
                default=['/usr/bin', '/usr/libexec', '/usr/share', '/var/log/libvirt',
                         '/var/lib/libvirt/qemu/nvram'],
                help='Directories, besides local_storage_path and shared_storage_path, '
                     'that a domain definition this agent receives (cold migration, '
                     'evacuation) may name files in: the emulator, firmware and direct-boot '
                     'kernels, console log files, UEFI variable stores. A definition naming '
                     'a host file elsewhere is refused. Disks are always held to the two '
                     'storage paths and the VM\'s own volumes. Possible values: a comma-'
                     'separated list of absolute directories. Related options: '
                     'local_storage_path, shared_storage_path.'),
    cfg.IntOpt('auto_converge_initial', default=20, min=1, max=99,
               help='Initial guest CPU throttle (percent) of auto-converge.'),
    cfg.IntOpt('auto_converge_increment', default=10, min=1, max=99,
               help='Throttle increment (percent) of auto-converge.'),
    cfg.StrOpt('cluster', default='default',
               help='Cluster this host belongs to; migrations stay inside one.'),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(libvirt_opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: libvirt_opts}
