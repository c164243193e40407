"""What an RPC endpoint accepts: each argument declared once, checked before the body runs.

An endpoint method is decorated with ``@arguments.accepts(name=Kind, ...)``, one
kind per parameter. A call whose argument has the wrong type, lies out of range
or is too long is refused with exception.InvalidArgument naming the method and
the argument (a path into a dict: ``instance.disks[0].name``) before anything
reaches the database, a driver or the disk; the body trusts what it gets. The
decorator refuses a method that leaves a parameter undeclared, so a new one
cannot slip past.

Dicts that agents exchange (instances, migrations, offers) are declared to the
depth the receiving side reads; the rest of such a dict is bounded in size only.
"""

import functools
import inspect
import json
import math
import reprlib
import unicodedata
import uuid

import oslo_messaging as messaging

from vmmig.conductor import holds
from vmmig import exception
from vmmig import limits
from vmmig import names

#: The most any one argument may weigh as JSON: the libvirt XML of a VM with many
#: devices is tens of KiB; a host's report of a thousand VMs is a few MiB.
JSON_MAX = 16 * 1024 * 1024

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


class Refused(Exception):
    """Raised by a kind: ``reason`` says what is wrong with the value at ``where``."""

    def __init__(self, where, reason):
        super().__init__(where, reason)
        self.where = where
        self.reason = reason


def _name(kind, value, where):
    """A host, VM, disk or volume name: the one rule of vmmig.names."""
    wrong = names.problem(value)
    if wrong:
        raise Refused(where, 'a %s name: %s' % (kind, wrong))
    return value


def _type(value):
    return type(value).__name__


def _printable(value, where, lines):
    allowed = '\n\r\t' if lines else ''
    bad = sorted({'U+%04X' % ord(c) for c in value
                  if unicodedata.category(c) == 'Cc' and c not in allowed})
    if bad:
        raise Refused(where, 'contains control characters (%s)' % ', '.join(bad))


class Kind(object):
    """One type of argument; ``check`` returns the value (cleaned) or raises Refused."""

    def check(self, value, where):
        raise NotImplementedError


class Int(Kind):
    """A whole number (not a bool) in [minimum, maximum]."""

    def __init__(self, minimum=0, maximum=limits.COUNT_MAX):
        self.minimum, self.maximum = minimum, maximum

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refused(where, 'must be a whole number, not %s' % _type(value))
        if not self.minimum <= value <= self.maximum:
            raise Refused(where, 'must be from %d to %d' % (self.minimum, self.maximum))
        return value


class Number(Int):
    """A finite number, whole or not (not a bool), in [minimum, maximum]."""

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Refused(where, 'must be a number, not %s' % _type(value))
        if not (math.isfinite(value) and self.minimum <= value <= self.maximum):
            raise Refused(where, 'must be from %s to %s' % (self.minimum, self.maximum))
        return value


class Bool(Kind):
    def check(self, value, where):
        if not isinstance(value, bool):
            raise Refused(where, 'must be true or false, not %s' % _type(value))
        return value


class Text(Kind):
    """A string of at most ``max_length`` characters; ``lines``: it may hold line
    breaks and tabs (an XML document), else no control character at all."""

    def __init__(self, max_length=limits.NAME_MAX, lines=False):
        self.max_length, self.lines = max_length, lines

    def check(self, value, where):
        if not isinstance(value, str):
            raise Refused(where, 'must be a string, not %s' % _type(value))
        if len(value) > self.max_length:
            raise Refused(where, 'has at most %d characters; this one has %d'
                          % (self.max_length, len(value)))
        _printable(value, where, self.lines)
        return value


class Choice(Kind):
    def __init__(self, *values):
        self.values = values

    def check(self, value, where):
        if not isinstance(value, str) or value not in self.values:
            raise Refused(where, 'must be one of %s' % ', '.join(self.values))
        return value


class Name(Kind):
    """The name of a ``kind`` (host, instance): see _name."""

    def __init__(self, kind):
        self.kind = kind

    def check(self, value, where):
        return _name(self.kind, value, where)


class MigrationId(Int):
    """A migration's id, as the conductor gives it to the agents."""

    def __init__(self):
        super().__init__(1, limits.MIGRATION_ID_MAX)


class MigrationRef(Kind):
    """How an operator names a migration (or, with ``what``, an action plan): its id
    (a number or its decimal digits) or its UUID."""

    def __init__(self, what='migration'):
        self.what = what

    def check(self, value, where):
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return MigrationId().check(value, where)
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
        raise Refused(where, 'must be a %s id (1 to %d) or a UUID, not %s'
                      % (self.what, limits.MIGRATION_ID_MAX, _repr.repr(value)))


class Reason(Kind):
    """Why, in words a person reads and a VARCHAR(255) keeps: the rule of a hold
    reason (vmmig.conductor.holds), for a hold or a host's maintenance."""

    def check(self, value, where):
        try:
            return holds.hold_reason(value)
        except exception.Invalid as e:
            raise Refused(where, e.kwargs.get('reason') or e.message)


HoldReason = Reason


class Optional(Kind):
    """``kind``, or None."""

    def __init__(self, kind):
        self.kind = kind

    def check(self, value, where):
        return None if value is None else self.kind.check(value, where)


class Json(Kind):
    """Anything JSON carries, of at most ``max_bytes`` once encoded."""

    def __init__(self, max_bytes=JSON_MAX):
        self.max_bytes = max_bytes

    def check(self, value, where):
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError) as e:
            raise Refused(where, 'is not plain data (%s)' % e)
        if size > self.max_bytes:
            raise Refused(where, 'weighs %d bytes; at most %d are accepted'
                          % (size, self.max_bytes))
        return value


class List(Kind):
    def __init__(self, item, max_items=limits.COUNT_MAX):
        self.item, self.max_items = item, max_items

    def check(self, value, where):
        if not isinstance(value, (list, tuple)):
            raise Refused(where, 'must be a list, not %s' % _type(value))
        if len(value) > self.max_items:
            raise Refused(where, 'holds at most %d items; this one has %d'
                          % (self.max_items, len(value)))
        return [self.item.check(v, '%s[%d]' % (where, i)) for i, v in enumerate(value)]


class Dict(Kind):
    """A dict whose ``fields`` ({key: kind}) are checked when present (``required``
    ones must be); other keys are strings, their values ``rest`` (None: refused)."""

    def __init__(self, fields=None, required=(), rest=None, max_items=1000):
        self.fields = fields or {}
        self.required = tuple(required)
        self.rest = rest
        self.max_items = max_items

    def check(self, value, where):
        if not isinstance(value, dict):
            raise Refused(where, 'must be a dict, not %s' % _type(value))
        if len(value) > self.max_items:
            raise Refused(where, 'holds at most %d keys; this one has %d'
                          % (self.max_items, len(value)))
        missing = [k for k in self.required if k not in value]
        if missing:
            raise Refused(where, 'lacks %s' % ', '.join(missing))
        out = {}
        for key, item in value.items():
            Text().check(key, '%s key' % where)
            kind = self.fields.get(key, self.rest)
            if kind is None:
                raise Refused('%s.%s' % (where, key), 'is not accepted here; accepted: %s'
                              % (', '.join(sorted(self.fields)) or 'nothing'))
            out[key] = kind.check(item, '%s.%s' % (where, key))
        return out


def accepts(**kinds):
    """Declare the kind of every argument of an RPC endpoint method (all but self and
    context); calls are checked against it, and vmmig's errors go back to the caller
    as expected ones (oslo.messaging logs them without a traceback)."""

    def decorate(func):
        signature = inspect.signature(func)
        params = [n for n in signature.parameters if n not in ('self', 'context')]
        if set(params) != set(kinds):
            raise TypeError('%s: arguments declared %s, taken %s'
                            % (func.__qualname__, sorted(kinds), sorted(params)))

        def checked(self, context, *args, **kwargs):
            try:
                bound = signature.bind(self, context, *args, **kwargs)
            except TypeError as e:
                raise exception.InvalidArgument(method=func.__name__, argument='(call)',
                                                reason=str(e))
            for name in list(bound.arguments):
                if name in kinds:
                    bound.arguments[name] = check(func.__name__, name, kinds[name],
                                                  bound.arguments[name])
            return func(*bound.args, **bound.kwargs)

        guarded = messaging.expected_exceptions(exception.VmmigException)(checked)

        @functools.wraps(func)
        def endpoint(*args, **kwargs):
            return guarded(*args, **kwargs)

        endpoint.arguments = dict(kinds)
        return endpoint

    return decorate


def check(method, name, kind, value):
    """``value`` of argument ``name`` of ``method``, checked by ``kind``."""
    try:
        return kind.check(value, name)
    except Refused as e:
        raise exception.InvalidArgument(method=method, argument=e.where,
                                        reason='%s (got %s)' % (e.reason, _repr.repr(value)))


# What the endpoints exchange, declared once --------------------------------------

#: Bytes, seconds since the epoch and other figures a host reports: never negative,
#: and within what a 64-bit column holds.
FIGURE = Optional(Number(0, 2 ** 63 - 1))
TIME = Number(0, 2 ** 40)
REQUESTED_BY = Optional(Text())
#: A migration type checks each option's type and bounds (MigrationType.validate_options).
OPTIONS = Optional(Dict(rest=Json(4096), max_items=64))


class HexToken(Text):
    """Hexadecimal digits only, so that it can become part of a file name."""

    def __init__(self, max_length=64):
        super().__init__(max_length)

    def check(self, value, where):
        value = super().check(value, where)
        if not value or value.strip('0123456789abcdef'):
            raise Refused(where, 'must be lowercase hexadecimal digits')
        return value


#: A storage probe's token becomes part of a file name on the shared storage.
PROBE_TOKEN = Optional(HexToken())

DISK = Dict({
    'name': Text(), 'location': Choice('local', 'shared', 'volume'),
    'path': Optional(Text(4096)), 'size_gb': FIGURE, 'capacity': FIGURE,
    'volume': Optional(Text()),
}, required=('name', 'location'), rest=Json(64 * 1024))

#: An instance as the agents describe it (the conductor's records, the host steps).
INSTANCE = Dict({
    'name': Name('instance'), 'host': Optional(Name('host')), 'power_state': Optional(Text()),
    'memory_mb': FIGURE, 'vcpus': FIGURE, 'disks': List(DISK, max_items=1024),
}, required=('name',), rest=Json())
INSTANCES = List(INSTANCE, max_items=100000)

#: A host as its agent reports it; what the scheduler reads is typed.
FACTS = Dict({
    'host': Optional(Name('host')), 'vcpus': FIGURE, 'memory_mb': FIGURE, 'disk_gb': FIGURE,
    'vcpus_used': FIGURE, 'memory_mb_used': FIGURE, 'disk_gb_used': FIGURE,
    'link_bandwidth': FIGURE, 'shared_storage': Optional(Text()),
    'cpu_vendor': Optional(Text()), 'cpu_features': Optional(List(Text(), max_items=4096)),
}, rest=Json(1024 * 1024))

#: A live migration job's statistics (vmmig.hypervisor.monitor).
STATS = Dict({
    'type': Optional(Int(0, 16)), 'postcopy': Optional(Bool()),
    'data_total': FIGURE, 'data_processed': FIGURE, 'data_remaining': FIGURE,
    'disk_total': FIGURE, 'disk_remaining': FIGURE, 'memory_iteration': FIGURE,
    'downtime': FIGURE, 'memory_dirty_rate': FIGURE, 'memory_page_size': FIGURE,
}, rest=Json(64 * 1024))

#: A migration record as the conductor hands it to the agents.
MIGRATION = Dict({
    'id': MigrationId(), 'instance': Optional(Name('instance')),
    'source_host': Optional(Name('host')), 'dest_host': Optional(Name('host')),
    'options': OPTIONS,
}, required=('id',), rest=Json(1024 * 1024))

SETTINGS = Dict({
    'max_downtime_ms': Int(0, limits.MAX_DOWNTIME_MS_MAX),
    'bandwidth_mibps': Int(0, limits.BANDWIDTH_MIBPS_MAX),
    'auto_converge': Bool(), 'post_copy': Bool(), 'block_migration': Bool(),
    'shared_storage_proven': Optional(Bool()),
    'policy': Dict(rest=Json(64 * 1024)),
}, required=('policy',), rest=Json(64 * 1024))

DEST_INFO = Dict({'host': Optional(Name('host'))}, rest=Json(1024 * 1024))

#: A file a source agent offers: its id, kind, size and SHA-256 as it recorded them.
OFFERED_FILE = Dict({
    'id': Text(), 'kind': Choice('disk', 'saved_state'), 'size': Int(0, 2 ** 63 - 1),
    'path': Optional(Text(4096)), 'sha256': HexToken(64), 'token': HexToken(64),
}, required=('id', 'kind', 'size'), rest=Json(4096))

OFFER = Dict({
    'address': Text(), 'port': Int(1, 65535), 'files': List(OFFERED_FILE, max_items=1024),
    'instance': Optional(INSTANCE), 'token': Optional(HexToken(64)),
}, required=('address', 'port', 'files'), rest=Json(64 * 1024))
