"""The one rule for names that cross a boundary, and the paths built from them.

A VM, disk, host or volume name becomes part of a file name (a simulated disk,
a saved memory image, a host's state file), an argument of ``qemu-img`` and a
column of the database. Each is checked where it enters (the cluster file, an
RPC argument, a CLI argument, a libvirt domain the agent reads) by ``check``;
code behind that trusts it. ``safe_path`` is the only way a path is made of
names: from checked names, under a configured directory, proved to stay there.

The rule (``RULE``): 1 to 255 characters, ASCII letters, digits and
``. _ : @ + -``, the first a letter or a digit. That takes what names are in
practice: Nova's ``instance-0000001a``, libvirt domain names as tools make them,
host names with dots and dashes, volume UUIDs, disk targets (``vda``). It
refuses a ``/`` (so no path part, no ``..``), a NUL or any control or space
character, a leading ``-`` (``qemu-img`` would read an option) and a leading
``.`` (``.``, ``..``, hidden files).
"""

import os
import re
import unicodedata

from vmmig import exception
from vmmig import limits

RULE = ('1 to %d characters: ASCII letters, digits and . _ : @ + -, the first a letter '
        'or a digit' % limits.NAME_MAX)

_CHAR = re.compile(r'[A-Za-z0-9._:@+-]\Z')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._:@+-]{0,%d}\Z' % (limits.NAME_MAX - 1))

#: The kinds of names, as they are called in messages.
KINDS = ('instance', 'disk', 'host', 'volume', 'shared storage', 'agent')


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def problem(value):
    """None when ``value`` is a good name, else what is wrong with it, in words."""
    if not isinstance(value, str):
        return 'a name is a string, not %s' % type(value).__name__
    if _NAME.match(value):
        return None
    if not value.strip():
        return 'a name must not be blank'
    if len(value) > limits.NAME_MAX:
        return 'a name has at most %d characters; this one has %d' % (
            limits.NAME_MAX, len(value))
    if '/' in value:
        return 'a name must not contain "/" (it would be a path)'
    if value[0] in '-.':
        return 'a name must not start with %r' % value[0]
    control = sorted({'U+%04X' % ord(c) for c in value if unicodedata.category(c) == 'Cc'})
    if control:
        # A newline would cut the name in a one-line answer or log line.
        return 'a name must not contain control characters (%s)' % ', '.join(control)
    bad = sorted({c for c in value if not _CHAR.match(c)})
    if bad:
        return 'a name must not contain %s; it may hold %s' % (
            ', '.join(repr(c) for c in bad), RULE)
    return 'a name is %s' % RULE


def check(kind, value):
    """``value`` if it is a good name, else InvalidName naming ``kind`` (the field)."""
    wrong = problem(value)
    if wrong:
        raise exception.InvalidName(kind='%s name' % kind, value=_shown(value), reason=wrong)
    return value


def is_valid(value):
    return problem(value) is None


def safe_path(base_dir, *names):
    """``base_dir``/name/... when every part is a good name and the result stays under
    ``base_dir`` (symbolic links resolved); InvalidName or Invalid otherwise.

    Each part is one path component made of checked names (``web-1-vda.img``): the
    rule forbids ``/`` and a leading ``.``, so none can climb out; the resolved path
    is compared too, so a link placed inside cannot lead out either.
    """
    if not names:
        raise exception.Invalid(reason='a path under %s needs a name' % base_dir)
    for part in names:
        check('file', part)
    path = os.path.join(base_dir, *names)
    base = os.path.realpath(base_dir)
    if not os.path.realpath(path).startswith(base.rstrip('/') + '/'):
        raise exception.Invalid(reason='%s leads outside %s' % (path, base_dir))
    return path


def is_under(path, base_dir):
    """True when ``path`` (absolute, links resolved) is inside ``base_dir``."""
    if not path or not base_dir or not os.path.isabs(path):
        return False
    base = os.path.realpath(base_dir)
    return os.path.realpath(path).startswith(base.rstrip('/') + '/')
