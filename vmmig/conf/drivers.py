from oslo_config import cfg

MIGRATION_TYPES = ['cold', 'live', 'evacuate']
STORAGE_MODES = ['ephemeral-shared', 'ephemeral-local', 'volume-only']

drivers_group = cfg.OptGroup('drivers', title='Enabled drivers',
                             help='Which plugins of each vmmig namespace are in use.')

drivers_opts = [
    cfg.StrOpt('backend', default='agents',
               help='Backend of the vmmig.backends namespace: where the hosts and VMs '
                    'come from and who moves them. "agents": a vmmig-agent per '
                    'hypervisor host reports it and carries out the host steps '
                    '([drivers] hypervisor). "nova": the cloud is OpenStack Nova\'s; '
                    'hosts and servers are discovered from its API and every move is '
                    'made through that API (options in [nova]); no agent runs.'),
    cfg.StrOpt('hypervisor', default='sim',
               help='Hypervisor driver of the vmmig.hypervisor namespace that agents '
                    'use: "sim" (the simulator) or "libvirt" (needs vmmig[libvirt]).'),
    cfg.ListOpt('enabled_migration_types', default=list(MIGRATION_TYPES),
                help='Migration types (vmmig.migration namespace) the conductor accepts. '
                     'Possible values: %s.' % ', '.join(MIGRATION_TYPES)),
    cfg.ListOpt('enabled_storage_modes', default=list(STORAGE_MODES),
                help='Storage modes (vmmig.storage namespace) the conductor accepts. '
                     'Possible values: %s.' % ', '.join(STORAGE_MODES)),
    cfg.StrOpt('fencing', default='heartbeat',
               help='Fencing driver (vmmig.fencing namespace) that must confirm a down '
                    'host cannot run its VMs any more before they are evacuated. '
                    '"heartbeat" trusts a host whose agent has missed its heartbeats '
                    'for [conductor] fencing_grace seconds; "sim" powers a simulated '
                    'host off; "noop" confirms nothing and so forbids evacuation; '
                    '"nova" (with [drivers] backend = nova) trusts a host whose '
                    'nova-compute service is forced down in Nova, which is how an '
                    'operator or an outside fencing tells Nova the host is fenced.'),
]


def register_opts(conf):
    conf.register_group(drivers_group)
    conf.register_opts(drivers_opts, group=drivers_group)


def list_opts():
    return {drivers_group: drivers_opts}
