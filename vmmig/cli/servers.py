"""`server migrate` and `server evacuate`: ask the conductor to move VMs."""

from vmmig.cli import base
from vmmig.cli import progress
from vmmig.cli import types
from vmmig import limits


def add_wait_argument(parser):
    parser.add_argument(
        '--wait', action='store_true',
        help='Wait until the migration ends (or is held), showing its progress on '
             'stderr; exit 1 if it ends failed, cancelled or in error.')


def wait_for(command, parsed_args, records, until=progress.SETTLED):
    """The final records of ``records`` once settled; flags a bad end in the exit code."""
    enabled = command.app.stderr.isatty() and not base.machine_output(parsed_args)
    final = progress.wait(command.conductor, [r['id'] for r in records],
                          command.app.stderr, enabled,
                          interval=command.app.poll_interval, until=until,
                          sleep=command.app.sleep)
    if progress.unsuccessful(final):
        command.exit_code = base.EXIT_ERROR
    return final


class ServerMigrate(base.ShowOne):
    """Migrate a VM to another host (cold unless --live-migration)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('instance', metavar='VM', type=types.name,
                            help='Name of the VM to move.')
        parser.add_argument('--host', metavar='HOST', type=types.name,
                            help='Destination host; the scheduler picks one if unset.')
        parser.add_argument('--live-migration', action='store_true',
                            help='Move the VM while it runs (default: cold migration).')
        parser.add_argument('--shutdown', action='store_true',
                            help='Cold migration of a running VM: shut it down first '
                                 '(gracefully, then by force).')
        parser.add_argument('--hold', metavar='REASON', type=types.hold_reason,
                            help='Queue the migration held; `migration resume` releases it. '
                                 'At most %d characters.' % limits.HOLD_REASON_MAX)
        parser.add_argument('--max-downtime', metavar='MS',
                            type=types.bounded_int(1, limits.MAX_DOWNTIME_MS_MAX),
                            help='Live: the largest pause of the guest allowed at the '
                                 'switch-over, in milliseconds, from 1 to %d (QEMU\'s '
                                 'limit).' % limits.MAX_DOWNTIME_MS_MAX)
        parser.add_argument('--bandwidth', metavar='MIBPS',
                            type=types.bounded_int(1, limits.BANDWIDTH_MIBPS_MAX),
                            help='Live: cap of the migration stream in MiB/s, from 1 to %d '
                                 '(libvirt\'s limit).' % limits.BANDWIDTH_MIBPS_MAX)
        parser.add_argument('--auto-converge', action='store_true',
                            help='Live: throttle the guest CPU if pre-copy does not converge.')
        parser.add_argument('--post-copy', action='store_true',
                            help='Live: allow switching to post-copy.')
        add_wait_argument(parser)
        return parser

    @staticmethod
    def options(parsed_args):
        """Only the options the operator gave: the conductor's defaults fill the rest."""
        options = {}
        if parsed_args.shutdown:
            options['shutdown'] = True
        if parsed_args.max_downtime is not None:
            options['max_downtime'] = parsed_args.max_downtime
        if parsed_args.bandwidth is not None:
            options['bandwidth'] = parsed_args.bandwidth
        if parsed_args.auto_converge:
            options['auto_converge'] = True
        if parsed_args.post_copy:
            options['post_copy'] = True
        return options

    def take_action(self, parsed_args):
        # Checked before anything starts: an empty --hold is a mistake, not "no hold".
        hold = parsed_args.hold
        record = self.conductor.migrate_server(
            parsed_args.instance,
            migration_type='live' if parsed_args.live_migration else 'cold',
            host=parsed_args.host, options=self.options(parsed_args),
            hold_reason=hold, requested_by=base.requester())
        if parsed_args.wait:
            record = wait_for(self, parsed_args, [record])[0]
        return base.migration_show(record)


class ServerEvacuate(base.Lister):
    """Rebuild every VM of a failed host elsewhere."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--host', metavar='FAILED_HOST', required=True, type=types.name,
                            help='The failed host whose VMs are rebuilt elsewhere.')
        parser.add_argument('--target-host', metavar='HOST', type=types.name,
                            help='Where to rebuild them; the scheduler picks if unset.')
        add_wait_argument(parser)
        return parser

    def take_action(self, parsed_args):
        records = self.conductor.evacuate_host(parsed_args.host,
                                               target_host=parsed_args.target_host,
                                               requested_by=base.requester())
        if parsed_args.wait and records:
            records = wait_for(self, parsed_args, records)
        return base.migration_list(records)
