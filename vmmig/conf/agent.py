from oslo_config import cfg

agent_group = cfg.OptGroup('agent', title='Host agent',
                           help='The service on each hypervisor host.')

agent_opts = [
    cfg.StrOpt('topic', default='vmmig-agent', help='RPC topic of the agents.'),
    cfg.FloatOpt('heartbeat_interval', default=10.0, min=0.05,
                 help='Seconds between two heartbeats of an agent. Keep it well under '
                      '[conductor] heartbeat_timeout.'),
    cfg.FloatOpt('full_report_interval', default=60.0, min=0.0,
                 help='Seconds between two full reports (host facts and instances) of an '
                      'agent whose host has not changed. A change is reported with the next '
                      'heartbeat; a heartbeat in between only says the agent is alive, '
                      'which costs the conductor one small database update instead of a '
                      'comparison of every instance. 0 makes every heartbeat a full '
                      'report. Related: [agent] heartbeat_interval.'),
    cfg.HostAddressOpt('transfer_address', default='127.0.0.1',
                       help='Address on which the agent serves disks to a peer agent '
                            'during a cold migration.'),
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return {agent_group: agent_opts}
