from oslo_config import cfg

agent_group = cfg.OptGroup('agent', title='Host agent',
                           help='The service on each hypervisor host.')

agent_opts = [
    cfg.StrOpt('topic', default='vmmig-agent', help='RPC topic of the agents.'),
    cfg.FloatOpt('heartbeat_interval', default=10.0, min=0.05,
                 help='Seconds between two heartbeats of an agent. Keep it well under '
                      '[conductor] heartbeat_timeout.'),
    cfg.HostAddressOpt('transfer_address', default='127.0.0.1',
                       help='Address on which the agent serves disks to a peer agent '
                            'during a cold migration.'),
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return {agent_group: agent_opts}
