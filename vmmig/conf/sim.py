from oslo_config import cfg

sim_group = cfg.OptGroup('sim', title='Simulated hypervisor',
                         help='The "sim" hypervisor driver: a model of hosts and VMs.')

sim_opts = [
    cfg.StrOpt('cluster_file',
               help='JSON file describing the simulated hosts and their VMs. Unset '
                    'means the demo cluster shipped with vmmig.'),
    cfg.StrOpt('clock', default='virtual', choices=['virtual', 'scaled'],
               help='virtual: migrations take no real time; scaled: they take their '
                    'modelled time divided by time_scale.'),
    cfg.FloatOpt('time_scale', default=10.0, min=0.001,
                 help='With the scaled clock, modelled seconds per real second.'),
    cfg.IntOpt('seed', default=0,
               help='Seed of the random dirty-rate jitter; the same seed gives the '
                    'same figures.'),
    cfg.FloatOpt('jitter', default=0.0, min=0.0, max=1.0,
                 help='Fraction by which the dirty rate varies from round to round.'),
]


def register_opts(conf):
    conf.register_group(sim_group)
    conf.register_opts(sim_opts, group=sim_group)


def list_opts():
    return {sim_group: sim_opts}
