from oslo_config import cfg

ha_group = cfg.OptGroup('ha', title='Host health',
                        help='What happens when a host says it is about to fail.')

PREFAILURE_ACTIONS = ('drain', 'notify')

ha_opts = [
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
