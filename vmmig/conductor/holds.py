"""What makes a hold reason: the one check the CLI and the conductor both apply."""

import unicodedata

from vmmig import exception
from vmmig import limits


def hold_reason(reason):
    """``reason`` without its surrounding blanks; Invalid when it cannot be recorded.

    A held migration waits for a person, and the reason is what tells the next
    one why: an empty or blank reason is refused, never taken for "no hold". It
    is stored in a column of limits.HOLD_REASON_MAX characters, and shown on one
    line, so a longer one or one with control characters is refused too.
    """
    text = reason.strip() if isinstance(reason, str) else ''
    if not text:
        raise exception.Invalid(reason='a held migration needs a reason that is not '
                                       'blank (got %r)' % (reason,))
    if len(text) > limits.HOLD_REASON_MAX:
        raise exception.Invalid(reason='a hold reason has at most %d characters; this one '
                                       'has %d' % (limits.HOLD_REASON_MAX, len(text)))
    control = sorted({'U+%04X' % ord(c) for c in text if unicodedata.category(c) == 'Cc'})
    if control:
        raise exception.Invalid(reason='a hold reason must not contain control characters '
                                       '(%s)' % ', '.join(control))
    return text
