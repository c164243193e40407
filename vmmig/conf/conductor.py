from oslo_config import cfg

conductor_group = cfg.OptGroup('conductor', title='Conductor',
                               help='The service that runs migrations.')

conductor_opts = [
    cfg.StrOpt('topic', default='vmmig-conductor',
               help='RPC topic of the conductor for operators\' requests (the CLI, the '
                    'REST API, outside health monitors). Related: report_topic.'),
    cfg.StrOpt('report_topic', default='vmmig-conductor-report',
               help='RPC topic on which the conductor takes the agents\' reports '
                    '(registration, heartbeats, migration progress, host health) and '
                    'nothing else, so that the broker can let agents publish there and '
                    'not on the operators\' topic. Agents capped below conductor RPC API '
                    '1.6 by [upgrade_levels] conductor report on the operators\' topic. '
                    'Related: topic, reports_on_operator_topic.'),
    cfg.BoolOpt('reports_on_operator_topic', default=True,
                help='Also take the agents\' reports on the operators\' topic, as '
                     'agents older than conductor RPC API 1.6 (or capped below it) send '
                     'them. Set to false once every agent is upgraded and uncapped: then '
                     'the operators\' topic serves only operators\' requests. The '
                     'report topic serves reports whatever this says.'),
    cfg.IntOpt('max_concurrent_migrations', default=10, min=1,
               help='Migrations running at once in the whole deployment; more wait in '
                    'the queue in submission order.'),
    cfg.IntOpt('max_outbound_per_host', default=2, min=1,
               help='Migrations running at once out of one source host.'),
    cfg.IntOpt('max_inbound_per_host', default=2, min=1,
               help='Migrations running at once into one destination host.'),
    cfg.IntOpt('worker_threads', default=16, min=1,
               help='Threads that execute migrations in one conductor.'),
    cfg.FloatOpt('dispatch_interval', default=1.0, min=0.01,
                 help='Seconds between two looks at the queue of migrations.'),
    cfg.FloatOpt('heartbeat_timeout', default=30.0, min=0.1,
                 help='Seconds without an agent heartbeat after which its host is '
                      'marked down. Related: [agent] heartbeat_interval.'),
    cfg.FloatOpt('fencing_grace', default=60.0, min=0.0,
                 help='Seconds a host must have been silent before the heartbeat '
                      'fencing driver confirms it cannot run VMs.'),
    cfg.FloatOpt('host_checks_max_age', default=30.0, min=0.0,
                 help='Seconds for which the checks the agents make at the request (guest '
                      'CPU on the destination, shared storage) are trusted when the '
                      'migration starts. One that waited longer in the queue, or was '
                      'held, is checked by the agents again; the checks of the database '
                      '(host up, not in maintenance, capacity) are made again always. '
                      'Also how long a passed check is trusted for later requests: a '
                      'probe file that proved two hosts share their instances storage, '
                      'and a destination that can give a guest CPU (the same CPU '
                      'definition, from the same source). A failed check is asked again '
                      'at the next request. 0 means the agents check again every time.'),
    cfg.FloatOpt('progress_interval', default=1.0, min=0.0,
                 help='At most one progress write to a migration record per this many '
                      'seconds.'),
    cfg.IntOpt('rpc_timeout', default=60, min=1,
               help='Seconds to wait for an answer to a short RPC call.'),
    cfg.IntOpt('migration_call_timeout', default=3600, min=1,
               help='Seconds to wait for an agent to finish a long step (the copy of '
                    'memory or disks).'),
]


def register_opts(conf):
    conf.register_group(conductor_group)
    conf.register_opts(conductor_opts, group=conductor_group)


def list_opts():
    return {conductor_group: conductor_opts}
