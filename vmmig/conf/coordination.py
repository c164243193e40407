from oslo_config import cfg

coordination_group = cfg.OptGroup('coordination', title='Coordination',
                                  help='How the conductors agree which one runs the HA '
                                       'monitor (tooz).')

coordination_opts = [
    cfg.StrOpt('backend_url', secret=True,
               help='tooz backend URL. Unset: a file backend under [DEFAULT] state_path '
                    '(file://$state_path/coordination), which holds for conductors on one '
                    'machine only. Examples: redis://127.0.0.1:6379?timeout=10 (a lock '
                    'of a conductor that died expires after "timeout" seconds), '
                    'postgresql://user:pw@host/db or mysql://user:pw@host/db (a lock '
                    'ends with its holder\'s connection), file:///shared/dir (one '
                    'machine; a lock ends with its holder\'s process). Related: [ha].'),
]


def register_opts(conf):
    conf.register_group(coordination_group)
    conf.register_opts(coordination_opts, group=coordination_group)


def list_opts():
    return {coordination_group: coordination_opts}
