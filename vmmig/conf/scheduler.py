from oslo_config import cfg

scheduler_group = cfg.OptGroup('scheduler', title='Host selection',
                               help='Filters that decide which hosts may take a VM.')

DEFAULT_FILTERS = ['compute', 'not_own_host', 'capacity', 'cpu_model', 'os_version',
                   'hypervisor_version', 'same_cluster', 'pci_passthrough', 'storage']

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
    cfg.FloatOpt('cpu_allocation_ratio', default=4.0, min=0.1,
                 help='vCPUs that may be placed per physical CPU.'),
]


def register_opts(conf):
    conf.register_group(scheduler_group)
    conf.register_opts(scheduler_opts, group=scheduler_group)


def list_opts():
    return {scheduler_group: scheduler_opts}
