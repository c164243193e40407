"""argparse types of the CLI's arguments: each refuses a bad value naming the argument.

argparse reports an ``ArgumentTypeError`` as ``vmmig ...: error: argument ARG: why``
and exits 2 before anything is sent. The bounds are vmmig.limits, the ones the
conductor holds too.
"""

import argparse
import uuid

from vmmig.conductor import holds
from vmmig import exception
from vmmig import limits
from vmmig import names


def migration_id(value):
    """A migration id (decimal ASCII digits within the database's range) or a UUID."""
    if value.isascii() and value.isdigit():
        number = int(value)
        if 1 <= number <= limits.MIGRATION_ID_MAX:
            return str(number)
        raise argparse.ArgumentTypeError('migration id %s is out of range (1 to %d)'
                                         % (value, limits.MIGRATION_ID_MAX))
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError('%r is neither a migration id (decimal digits) '
                                         'nor a UUID' % value)


def name(value):
    """A VM or host name: the rule of vmmig.names, the one the agents and the cluster
    file hold names to."""
    wrong = names.problem(value)
    if wrong:
        raise argparse.ArgumentTypeError('%r: %s' % (value, wrong))
    return value


def hold_reason(value):
    """Why a migration is held: the conductor's own check (vmmig.conductor.holds), so
    the CLI refuses exactly what the conductor would, before anything is sent."""
    try:
        return holds.hold_reason(value)
    except exception.Invalid as e:
        raise argparse.ArgumentTypeError(e.kwargs.get('reason') or e.message)


def bounded_int(minimum, maximum):
    """A decimal whole number in [minimum, maximum]."""

    def convert(value):
        if not (value.isascii() and value.isdigit()) or not (
                minimum <= int(value) <= maximum):
            raise argparse.ArgumentTypeError('%r is not a whole number from %d to %d'
                                             % (value, minimum, maximum))
        return int(value)

    convert.__name__ = 'whole number'
    return convert
