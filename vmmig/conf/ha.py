from oslo_config import cfg

PREFAILURE_ACTIONS = ('drain', 'notify')
RECOVERY_METHODS = ['auto', 'reserved_host']

ha_group = cfg.OptGroup('ha', title='High availability',
                        help='The monitor that fences a dead host and rebuilds its VMs '
                             'elsewhere, in the active one of the conductors; and what '
                             'happens when a host says it is about to fail.')

ha_opts = [
    cfg.BoolOpt('enabled', default=True,
                help='Run the HA monitor in this conductor (one conductor of all those '
                     'with it enabled is active at a time; see [coordination]). Without '
                     'a fencing driver that powers hosts off ([drivers] fencing = '
                     'redfish or sim) the monitor only reports dead hosts.'),
    cfg.FloatOpt('monitor_interval', default=1.0, min=0.05,
                 help='Seconds between two looks of the monitor at the hosts; also how '
                      'often a conductor that is not active tries to become so.'),
    cfg.FloatOpt('grace_period', default=0.0, min=0.0,
                 help='Seconds a host marked down (silent for [conductor] '
                      'heartbeat_timeout) is left alone before it is powered off: a '
                      'host whose agent restarts comes back without losing its VMs. '
                      'Default: no wait beyond the heartbeat timeout.'),
    cfg.FloatOpt('fencing_timeout', default=30.0, min=1.0,
                 help='Seconds the fencing driver has to confirm a host is powered off '
                      '(its BMC answering and reporting the power off); past them the '
                      'fencing has failed and no VM of the host is rebuilt.'),
    cfg.StrOpt('recovery_method', default='auto', choices=RECOVERY_METHODS,
               help='Where the VMs of a fenced host are rebuilt. "auto": wherever the '
                    'scheduler finds room; "reserved_host": only on the spare hosts of '
                    '[ha] reserved_hosts. Related: [ha] reserved_hosts.'),
    cfg.ListOpt('reserved_hosts', default=[],
                help='Spare hosts kept empty for the VMs of failed hosts: ordinary '
                     'migrations are not placed there; HA recovery uses them with '
                     'recovery_method = reserved_host.'),
    cfg.StrOpt('bmc_file',
               help='YAML or JSON file mapping each host name to its BMC: {"HOST": '
                    '{"address": "https://bmc-of-host:8000", "username": "...", '
                    '"password": "...", "system_id": "/redfish/v1/Systems/1", '
                    '"verify": true}}. Read by the redfish fencing driver; checked when '
                    'the conductor starts, an error names the host and the key.'),
    cfg.StrOpt('prefailure_action', default='drain', choices=PREFAILURE_ACTIONS,
               help='What the conductor does when a host reports it is failing (its '
                    "agent's health monitor, or an outside monitor calling host_health). "
                    'drain: the host goes into maintenance and a pre-failure plan moves '
                    'its VMs away at once, the reason recorded on the host and the plan. '
                    'notify: a recommended plan is recorded and announced '
                    '(vmmig.plan.automatic); nothing moves until an operator executes it '
                    '(`vmmig plan execute`). Related: [ha] health_monitor.'),
    cfg.StrOpt('health_monitor', default='noop',
               help='Health monitor the agent asks at every heartbeat (vmmig.health '
                    'namespace): noop (always healthy), sim (the health the simulated '
                    'host is given). A change of status is reported to the conductor. '
                    'Related: [ha] prefailure_action, [agent] heartbeat_interval.'),
]


def register_opts(conf):
    conf.register_group(ha_group)
    conf.register_opts(ha_opts, group=ha_group)


def list_opts():
    return {ha_group: ha_opts}
