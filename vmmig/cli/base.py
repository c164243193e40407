"""What every vmmig command shares: one-line errors as exit codes, and record columns."""

import datetime
import getpass

from cliff import columns
from cliff import command
from cliff import lister
from cliff import show
import oslo_messaging

from vmmig.db import states
from vmmig import exception

EXIT_ERROR = 1

# The order in which `migration show` lists a record's fields; others follow, sorted.
MIGRATION_FIELDS = (
    'id', 'uuid', 'instance', 'migration_type', 'storage_mode', 'state', 'source_host',
    'dest_host', 'requested_host', 'requested_by', 'vm_location', 'reason', 'hold_reason',
    'held_by', 'past_hold_reason', 'past_held_by', 'options', 'owner', 'bytes_total',
    'bytes_processed', 'bytes_remaining', 'disk_total', 'disk_remaining', 'dirty_rate',
    'iteration', 'downtime_ms', 'postcopy', 'abort_requested', 'force_complete_requested',
    'created_at', 'started_at', 'finished_at', 'updated_at', 'progress_at',
)
TIME_FIELDS = frozenset(('created_at', 'started_at', 'finished_at', 'updated_at',
                         'progress_at'))


def requester():
    """Who asks, as recorded on the migration (held_by, the audit trail)."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container: the record says nobody
        return None


def format_error(exc):
    """The one line an operator reads when a command fails."""
    if isinstance(exc, exception.VmmigException):
        # A remote exception's str() carries the conductor's traceback; .message does not.
        message = getattr(exc, 'message', None) or str(exc)
    elif isinstance(exc, oslo_messaging.RemoteError):
        message = exc.value or exc.exc_type
    elif isinstance(exc, oslo_messaging.MessagingTimeout):
        message = ('The conductor did not answer in time; is vmmig-conductor running? (%s)'
                   % (str(exc).strip().splitlines() or [''])[0])
    else:
        message = str(exc) or type(exc).__name__
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class ErrorsAsExitCode(object):
    """Print a failure as one line on stderr and exit 1; --debug keeps the traceback.

    A command that ran but whose outcome is bad (a migration that failed)
    sets ``exit_code``.
    """

    exit_code = 0

    def run(self, parsed_args):
        try:
            code = super().run(parsed_args)
        except Exception as exc:
            if getattr(self.app_args, 'debug', False):
                raise
            self.app.stderr.write(format_error(exc) + '\n')
            self.app.stderr.flush()
            return EXIT_ERROR
        return code or self.exit_code

    @property
    def conductor(self):
        return self.app.conductor


class Command(ErrorsAsExitCode, command.Command):
    pass


class Lister(ErrorsAsExitCode, lister.Lister):
    pass


class ShowOne(ErrorsAsExitCode, show.ShowOne):
    pass


def machine_output(parsed_args):
    return getattr(parsed_args, 'formatter', 'table') != 'table'


class TimeColumn(columns.FormattableColumn):
    """Seconds since the epoch: UTC ISO time for people, the number for programs."""

    def human_readable(self):
        if self._value is None:
            return ''
        return datetime.datetime.fromtimestamp(
            self._value, tz=datetime.timezone.utc).isoformat(timespec='seconds')


class YesNoColumn(columns.FormattableColumn):
    """A verdict: yes/no (with its note) for people, a boolean for programs."""

    def __init__(self, value, note=None):
        super().__init__(value)
        self.note = note

    def human_readable(self):
        word = 'yes' if self._value else 'no'
        return '%s (%s)' % (word, self.note) if self._value and self.note else word


class DictColumn(columns.FormattableColumn):
    def human_readable(self):
        return ', '.join('%s=%s' % (k, v) for k, v in sorted((self._value or {}).items()))


class ListColumn(columns.FormattableColumn):
    def human_readable(self):
        return '; '.join(str(v) for v in self._value or ())


def _column(name, value):
    if name in TIME_FIELDS:
        return TimeColumn(value)
    if isinstance(value, dict):
        return DictColumn(value)
    if isinstance(value, (list, tuple)):
        return ListColumn(value)
    return value


# A record keeps who held it and why once it is resumed; shown apart from what holds it now.
PAST_HOLD = {'hold_reason': 'past_hold_reason', 'held_by': 'past_held_by'}


def _is_held(record):
    return record.get('state') == states.HELD


def migration_show(record):
    """(names, values) of one migration record, for a ShowOne."""
    if not _is_held(record):
        record = {PAST_HOLD.get(k, k): v for k, v in record.items()}
    names = [f for f in MIGRATION_FIELDS if f in record]
    names += sorted(set(record) - set(MIGRATION_FIELDS))
    return tuple(names), tuple(_column(n, record[n]) for n in names)


MIGRATION_LIST_COLUMNS = ('ID', 'UUID', 'Instance', 'Type', 'Storage Mode', 'Source Host',
                          'Dest Host', 'State', 'Reason')


def migration_row(record):
    reason = record.get('reason')
    if not reason and _is_held(record) and record.get('hold_reason'):
        reason = 'held: %s' % record['hold_reason']
    return (record.get('id'), record.get('uuid'), record.get('instance'),
            record.get('migration_type'), record.get('storage_mode'),
            record.get('source_host'), record.get('dest_host'), record.get('state'),
            reason or '')


def migration_list(records):
    """(column names, rows) of migration records, for a Lister."""
    return MIGRATION_LIST_COLUMNS, [migration_row(r) for r in records]
