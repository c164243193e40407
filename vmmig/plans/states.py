"""The states of an action plan and of its actions, and the transitions between them.

A plan is recorded ``recommended`` (built, nothing moves), becomes ``ongoing``
once executed, and ends ``succeeded`` (every VM moved), ``partial`` (some VMs
stay, each with its reason), ``failed`` (none could move) or ``cancelled``.
"""

RECOMMENDED = 'recommended'
ONGOING = 'ongoing'
SUCCEEDED = 'succeeded'
PARTIAL = 'partial'
FAILED = 'failed'
CANCELLED = 'cancelled'

ALL = (RECOMMENDED, ONGOING, SUCCEEDED, PARTIAL, FAILED, CANCELLED)
TERMINAL = frozenset((SUCCEEDED, PARTIAL, FAILED, CANCELLED))

TRANSITIONS = {
    RECOMMENDED: {ONGOING, CANCELLED},
    ONGOING: {SUCCEEDED, PARTIAL, FAILED, CANCELLED},
    SUCCEEDED: set(),
    PARTIAL: set(),
    FAILED: set(),
    CANCELLED: set(),
}

# Operator verbs and the plan states they are allowed from.
VERBS = {
    'execute': (RECOMMENDED,),
    'abort': (RECOMMENDED, ONGOING),
}

# An action: one VM of the plan.
# pending: nothing recorded yet; recorded: its migration exists (migration_id);
# moved: the migration completed; failed: it ended unmoved (or in error);
# stays: it cannot move (the reason says why); cancelled: the plan was aborted first.
PENDING = 'pending'
RECORDED = 'recorded'
MOVED = 'moved'
ACTION_FAILED = 'failed'
STAYS = 'stays'
ACTION_CANCELLED = 'cancelled'

ACTION_STATES = (PENDING, RECORDED, MOVED, ACTION_FAILED, STAYS, ACTION_CANCELLED)
ACTION_TERMINAL = frozenset((MOVED, ACTION_FAILED, STAYS, ACTION_CANCELLED))

ACTION_TRANSITIONS = {
    PENDING: {RECORDED, STAYS, ACTION_CANCELLED},
    RECORDED: {MOVED, ACTION_FAILED},
    MOVED: set(),
    ACTION_FAILED: set(),
    STAYS: set(),
    ACTION_CANCELLED: set(),
}


def allowed(current, target, table=TRANSITIONS):
    return target in table.get(current, ())


def sources_of(target, table=TRANSITIONS):
    """Every state from which ``target`` may be reached."""
    return tuple(s for s in table if target in table[s])


def outcome(actions):
    """The end state of a plan whose actions all ended, and the words that say why."""
    # A failed live move that a cold one took over counts through the cold one.
    replaced = {a.get('fallback_of') for a in actions}
    actions = [a for a in actions if a['id'] not in replaced] if any(
        'id' in a for a in actions) else actions
    moved = [a for a in actions if a['state'] == MOVED]
    stayed = [a for a in actions if a['state'] != MOVED]
    if not stayed:
        return SUCCEEDED, 'every VM moved (%d)' % len(moved)
    why = '; '.join('%s stays: %s' % (a['instance'], a.get('reason') or a['state'])
                    for a in stayed)
    if not moved:
        return FAILED, 'no VM moved: %s' % why
    return PARTIAL, '%d of %d VMs moved; %s' % (len(moved), len(actions), why)
