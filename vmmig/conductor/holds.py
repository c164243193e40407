"""What makes a hold reason: the one check the CLI and the conductor both apply."""

from vmmig import exception


def hold_reason(reason):
    """``reason`` without its surrounding blanks; Invalid when nothing is left.

    A held migration waits for a person, and the reason is what tells the next
    one why: an empty or blank reason is refused, never taken for "no hold".
    """
    text = reason.strip() if isinstance(reason, str) else ''
    if not text:
        raise exception.Invalid(reason='a held migration needs a reason that is not '
                                       'blank (got %r)' % (reason,))
    return text
