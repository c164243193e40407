from oslo_config import cfg

upgrade_group = cfg.OptGroup(
    'upgrade_levels', title='RPC version caps for rolling upgrades',
    help='While services of two releases run side by side, cap what the new ones '
         'send at the version the oldest peer understands; unset once every '
         'service is upgraded.')

_VERSION = r'^\d+\.\d+$'

upgrade_opts = [
    cfg.StrOpt('conductor', regex=_VERSION,
               help='Highest conductor RPC API version to send (agents, CLI). Unset: '
                    'the newest this release knows. Example: 1.1 while a conductor '
                    'of the release before still runs.'),
    cfg.StrOpt('agent', regex=_VERSION,
               help='Highest agent RPC API version the conductor sends. Unset: the '
                    'newest this release knows.'),
]


def register_opts(conf):
    conf.register_group(upgrade_group)
    conf.register_opts(upgrade_opts, group=upgrade_group)


def list_opts():
    return {upgrade_group: upgrade_opts}
