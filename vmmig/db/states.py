"""The states of a migration and the one table of transitions between them."""

QUEUED = 'queued'
HELD = 'held'
PREPARING = 'preparing'
RUNNING = 'running'
POSTCOPY = 'postcopy'
COMPLETED = 'completed'
FAILED = 'failed'
CANCELLED = 'cancelled'
ERROR = 'error'

ALL = (QUEUED, HELD, PREPARING, RUNNING, POSTCOPY, COMPLETED, FAILED, CANCELLED, ERROR)

# completed: the VM runs (or rests) on the destination.
# failed: rolled back cleanly, the VM is where it was, the reason is recorded.
# cancelled: aborted by someone, rolled back, the VM is where it was.
# error: the VM's place is uncertain; the record says where it was last seen.
TERMINAL = frozenset((COMPLETED, FAILED, CANCELLED, ERROR))
# States in which some conductor is working on the migration right now.
ACTIVE = frozenset((PREPARING, RUNNING, POSTCOPY))

TRANSITIONS = {
    QUEUED: {HELD, PREPARING, CANCELLED, FAILED},
    HELD: {QUEUED, CANCELLED},
    PREPARING: {RUNNING, FAILED, CANCELLED, ERROR},
    RUNNING: {POSTCOPY, COMPLETED, FAILED, CANCELLED, ERROR},
    POSTCOPY: {COMPLETED, ERROR},
    COMPLETED: set(),
    FAILED: set(),
    CANCELLED: set(),
    ERROR: set(),
}

# Operator verbs and the states they are allowed from.
VERBS = {
    'hold': (QUEUED,),
    'resume': (HELD,),
    'abort': (QUEUED, HELD, PREPARING, RUNNING),
    'force-complete': (RUNNING,),
}


def allowed(current, target):
    return target in TRANSITIONS.get(current, ())


def sources_of(target):
    """Every state from which ``target`` may be reached."""
    return tuple(s for s in ALL if target in TRANSITIONS[s])
