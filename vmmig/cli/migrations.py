"""`migration list|show|abort|hold|resume|force-complete`: look at and steer migrations."""

from vmmig.cli import base
from vmmig.cli import servers
from vmmig.cli import types
from vmmig.db import states
from vmmig import limits


class MigrationList(base.Lister):
    """List migrations, oldest first."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--state', choices=states.ALL, help='Only migrations in this state.')
        parser.add_argument('--instance', metavar='VM', type=types.name,
                            help='Only migrations of this VM.')
        parser.add_argument('--host', metavar='HOST', type=types.name,
                            help='Only migrations out of or into this host.')
        return parser

    def take_action(self, parsed_args):
        return base.migration_list(self.conductor.migration_list(
            state=parsed_args.state, instance=parsed_args.instance, host=parsed_args.host))


class _OneMigration(base.ShowOne):
    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='ID', type=types.migration_id,
                            help='Migration id or UUID.')
        return parser

    def record(self, answer, parsed_args):
        # A verb that answers nothing still shows where the migration stands.
        if isinstance(answer, dict):
            return answer
        return self.conductor.migration_get(parsed_args.migration)

    def show(self, answer, parsed_args):
        return base.migration_show(self.record(answer, parsed_args))


class MigrationShow(_OneMigration):
    """Show a migration: its state, hosts, reason and progress."""

    def take_action(self, parsed_args):
        return self.show(self.conductor.migration_get(parsed_args.migration), parsed_args)


class MigrationAbort(_OneMigration):
    """Abort a queued, held or running migration; the VM stays where it was."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--wait', action='store_true',
                            help='Wait until the migration has ended; exit 1 unless it '
                                 'ends cancelled.')
        return parser

    def take_action(self, parsed_args):
        record = self.record(self.conductor.migration_abort(
            parsed_args.migration, requested_by=base.requester()), parsed_args)
        if parsed_args.wait:
            record = servers.wait_for(self, parsed_args, [record], until=states.TERMINAL)[0]
            # Cancelled is what was asked for; anything else is not.
            self.exit_code = 0 if record.get('state') == states.CANCELLED else base.EXIT_ERROR
        return base.migration_show(record)


class MigrationHold(_OneMigration):
    """Hold a queued migration: it waits until `migration resume`."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--reason', required=True, type=types.hold_reason,
                            help='Why it is held (recorded), at most %d characters.'
                                 % limits.HOLD_REASON_MAX)
        return parser

    def take_action(self, parsed_args):
        return self.show(self.conductor.migration_hold(
            parsed_args.migration, parsed_args.reason,
            requested_by=base.requester()),
            parsed_args)


class MigrationResume(_OneMigration):
    """Release a held migration back into the queue."""

    verb = 'migration_resume'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        servers.add_wait_argument(parser)
        return parser

    def take_action(self, parsed_args):
        record = self.record(getattr(self.conductor, self.verb)(
            parsed_args.migration, requested_by=base.requester()), parsed_args)
        if parsed_args.wait:
            record = servers.wait_for(self, parsed_args, [record])[0]
        return base.migration_show(record)


class MigrationForceComplete(MigrationResume):
    """Make a running live migration finish now (pause the guest, or post-copy if allowed)."""

    verb = 'migration_force_complete'
