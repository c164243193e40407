"""[nova]: how the ``nova`` backend reaches Nova (keystoneauth1 session, auth and
adapter options, as Nova's own [placement] and [neutron] groups) and how often it
looks."""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'nova'
SERVICE_TYPE = 'compute'

nova_group = cfg.OptGroup(GROUP, title='Nova backend',
                          help='The cloud whose VMs Nova owns, used with [drivers] '
                               'backend = nova: Keystone credentials of a user with '
                               "Nova's admin role, the compute endpoint, and the "
                               'intervals of the discovery and of the polls.')

nova_opts = [
    cfg.FloatOpt('sync_interval', default=10.0, min=0.1,
                 help='Seconds between two discoveries of the compute services, '
                      'hypervisors and servers of Nova, which fill the records of '
                      "hosts and VMs as the agents' heartbeats do elsewhere, and "
                      'reconcile migrations that Nova ended or lost.'),
    cfg.FloatOpt('poll_interval', default=0.5, min=0.05,
                 help='Seconds between two looks at a server and its migration while '
                      'Nova moves it (progress, end).'),
    cfg.IntOpt('operation_timeout', default=1800, min=1,
               help='Seconds a move may take in Nova before vmmig stops waiting and '
                    'ends its record as error, saying where Nova shows the server and '
                    'what its migration is at then.'),
    cfg.BoolOpt('shared_instances_storage', default=False,
                help="The compute hosts share the storage of the servers' image-backed "
                     'disks (an NFS or Ceph instances directory). Nova does not say '
                     'so in its API. True: such disks count as shared, so those VMs may '
                     'be evacuated (rebuilt on their disks); False: they are local, a '
                     "live migration copies them (block_migration 'auto' lets Nova "
                     'choose) and only volume-backed VMs can be evacuated.'),
    cfg.BoolOpt('disable_in_maintenance', default=True,
                help='While vmmig holds a host in maintenance (an operator\'s drain, or '
                     'the HA monitor\'s fencing), its nova-compute service is disabled in '
                     'Nova with a reason that begins "vmmig maintenance", so Nova\'s '
                     'scheduler places no new server there; it is enabled again when '
                     'the maintenance is lifted. A service disabled in Nova with another '
                     'reason (by an operator) is left as it is. Checked at each '
                     'discovery, so a change Nova could not take at once is made later. '
                     'False: vmmig never changes a service in Nova.'),
]


def register_opts(conf):
    conf.register_group(nova_group)
    conf.register_opts(nova_opts, group=nova_group)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)
    ks_loading.register_adapter_conf_options(conf, GROUP, include_deprecated=False)
    conf.set_default('service_type', SERVICE_TYPE, group=GROUP)
    conf.set_default('valid_interfaces', ['internal', 'public'], group=GROUP)


def _adapter_opts():
    opts = [o for o in ks_loading.get_adapter_conf_options(include_deprecated=False)
            if o.dest not in ('version', 'min_version', 'max_version')]
    cfg.set_defaults(opts, service_type=SERVICE_TYPE,
                     valid_interfaces=['internal', 'public'])
    return opts


def list_opts():
    # The password plugin's options, as the sample shows them for Nova's groups.
    return {nova_group: (nova_opts + ks_loading.get_session_conf_options()
                         + ks_loading.get_auth_common_conf_options()
                         + ks_loading.get_auth_plugin_conf_options('password')
                         + _adapter_opts())}
