from oslo_config import cfg

scheduler_group = cfg.OptGroup('scheduler', title='Host selection',
                               help='Filters that decide which hosts may take a VM.')

DEFAULT_FILTERS = ['compute', 'reserved', 'not_own_host', 'capacity', 'cpu_model', 'os_version',
                   'hypervisor_version', 'same_cluster', 'pci_passthrough', 'vgpu',
                   'hypervisor_capabilities', 'storage']

SAME_RELEASE = 'same_release'
TO_NEWER_RELEASE = 'to_newer_release'

scheduler_opts = [
    cfg.ListOpt('enabled_filters', default=list(DEFAULT_FILTERS),
                help='Host filters (vmmig.scheduler.filters namespace); a host must pass '
                     'every one. Each refusal carries its reason.'),
    cfg.ListOpt('weighers', default=['free_ram'],
                help='Weighers (vmmig.scheduler.weighers namespace) that rank the hosts '
                     'that passed, best first.'),
    cfg.IntOpt('reserved_host_memory_mb', default=512, min=0,
               help='Memory of each host kept for the host itself.'),
    cfg.IntOpt('reserved_host_vcpus', default=0, min=0,
               help='vCPUs of each host kept for the host itself.'),
    cfg.IntOpt('reserved_host_disk_gb', default=0, min=0,
               help='Local disk of each host kept for the host itself.'),
    cfg.StrOpt('os_release_moves', default=SAME_RELEASE,
               choices=[(SAME_RELEASE, 'a VM moves only between hosts of the same '
                                       'distribution and release'),
                        (TO_NEWER_RELEASE, 'also from a host of an older release to one of '
                                           'a newer release of the same distribution, as '
                                           'during an OS upgrade of the cluster; never '
                                           'from newer to older')],
               help='Which OS releases a VM may move between (the os_version filter). '
                    'What is compared is the distribution and the release, the first two '
                    'numbers of the version: Ubuntu 22.04.4 and Ubuntu 22.04.5 are the '
                    'same release (22.04), Debian 12 and Debian 13 are not. A version '
                    'without a number vmmig can read is compared whole. A move from a '
                    'newer release to an older one is always refused: a guest started '
                    'under the newer QEMU/KVM may use machine types and devices the older '
                    'one lacks. Related: enabled_filters (os_version).'),
    cfg.FloatOpt('cpu_allocation_ratio', default=4.0, min=0.1,
                 help='vCPUs that may be placed per physical CPU.'),
]


def register_opts(conf):
    conf.register_group(scheduler_group)
    conf.register_opts(scheduler_opts, group=scheduler_group)


def list_opts():
    return {scheduler_group: scheduler_opts}
