from oslo_config import cfg

from vmmig import limits

live_group = cfg.OptGroup('live_migration', title='Live migration',
                          help='How pre-copy is driven to convergence.')

TIMEOUT_ACTIONS = ['abort', 'force_complete_postcopy', 'pause']

live_opts = [
    cfg.IntOpt('max_downtime', default=500, min=1, max=limits.MAX_DOWNTIME_MS_MAX,
               help='Final allowed downtime in milliseconds, from 1 to %d (QEMU\'s '
                    'limit); it is reached in downtime_steps steps. Related: '
                    'downtime_steps, downtime_delay.' % limits.MAX_DOWNTIME_MS_MAX),
    cfg.IntOpt('downtime_steps', default=10, min=1,
               help='Steps in which the allowed downtime rises to max_downtime.'),
    cfg.IntOpt('downtime_delay', default=75, min=0,
               help='Seconds per GiB of guest RAM between two downtime steps.'),
    cfg.IntOpt('completion_timeout', default=800, min=0,
               help='Seconds per GiB of guest RAM and local disk after which the '
                    'timeout action is taken. 0 disables it.'),
    cfg.StrOpt('timeout_action', default='abort', choices=TIMEOUT_ACTIONS,
               help='What happens when the completion timeout expires or progress '
                    'stalls: abort (VM stays on the source), force_complete_postcopy '
                    '(switch to post-copy, needs permit_post_copy, else pause), or '
                    'pause (stop the guest until the switch-over).'),
    cfg.IntOpt('progress_timeout', default=0, min=0,
               help='Seconds without the remaining data shrinking after which the '
                    'migration counts as stalled and the timeout action is taken. '
                    '0 disables stall detection.'),
    cfg.BoolOpt('permit_auto_converge', default=False,
                help='Throttle the guest CPU when pre-copy does not converge.'),
    cfg.BoolOpt('permit_post_copy', default=False,
                help='Allow switching to post-copy (by force-complete or the timeout '
                     'action). A broken post-copy leaves the VM paused on the '
                     'destination and the migration in error.'),
    cfg.IntOpt('bandwidth', default=0, min=0, max=limits.BANDWIDTH_MIBPS_MAX,
               help='Cap of the migration stream in MiB/s, up to %d (libvirt\'s limit); '
                    '0 means no cap.' % limits.BANDWIDTH_MIBPS_MAX),
    cfg.FloatOpt('monitor_interval', default=0.5, min=0.01,
                 help='Seconds between two polls of the migration job statistics.'),
]

cold_group = cfg.OptGroup('cold_migration', title='Cold migration')

cold_opts = [
    cfg.IntOpt('shutdown_timeout', default=60, min=0,
               help='Seconds a graceful shutdown may take when the caller asked for '
                    'one; the VM is then powered off by force.'),
    cfg.IntOpt('bandwidth', default=0, min=0,
               help='Cap in MiB/s of each file an agent sends to a peer agent during a '
                    'cold migration (disks, saved memory); 0 means no cap. Set on the '
                    'source host\'s agent. Related: [agent] transfer_address, '
                    '[live_migration] bandwidth.'),
]


def register_opts(conf):
    conf.register_group(live_group)
    conf.register_opts(live_opts, group=live_group)
    conf.register_group(cold_group)
    conf.register_opts(cold_opts, group=cold_group)


def list_opts():
    return {live_group: live_opts, cold_group: cold_opts}
