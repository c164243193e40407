"""Who may call what: the oslo.policy enforcer and the decorator of conductor endpoints.

Each endpoint names its rule once, ``@policy.authorizes('vmmig:migration:create')``;
the rule is checked against the request context before the arguments are and
before anything else runs, so a refused request changes nothing. The defaults
are in vmmig.policies; an operator overrides them in [oslo_policy] policy_file.

oslo.policy looks for the policy files at each check (a search of the config
directories, a stat of each file) and runs the rule's checks through
``inspect``: several times the cost of the rest of a small endpoint. Here the
files are looked at once every RELOAD_INTERVAL seconds, and a decision is kept
for the same rule, credentials and target until the rules change.
"""

import functools
import inspect
import logging
import threading
import time

import oslo_messaging as messaging
from oslo_policy import policy

from vmmig import conf
from vmmig import context as vcontext
from vmmig import exception
from vmmig import policies

LOG = logging.getLogger(__name__)
CONF = conf.CONF

_ENFORCER = None
# Off only through benchmark_checks() below; nothing else writes it.
_CHECKS = True

#: Seconds between two looks at the policy files: an operator's edit is in force
#: at most this long after it is saved.
RELOAD_INTERVAL = 1.0
_clock = time.monotonic
_LOCK = threading.Lock()
_NEXT_LOOK = 0.0
_RULES_SEEN = None
# (rule, credentials, target) -> allowed, under the rules last seen.
_DECISIONS = {}
_MAX_DECISIONS = 4096


def get_enforcer():
    """The enforcer, its defaults registered (oslopolicy-* tools call it too)."""
    global _ENFORCER
    if _ENFORCER is None:
        _ENFORCER = policy.Enforcer(CONF)
        _ENFORCER.register_defaults(policies.list_rules())
    return _ENFORCER


def reset():
    global _ENFORCER, _NEXT_LOOK, _RULES_SEEN
    with _LOCK:
        if _ENFORCER is not None:
            _ENFORCER.clear()
        _ENFORCER = None
        _NEXT_LOOK, _RULES_SEEN = 0.0, None
        _DECISIONS.clear()


def _current_enforcer():
    """The enforcer, its rules brought up to date with the policy files at most once
    a RELOAD_INTERVAL; the kept decisions are dropped when the rules changed."""
    global _NEXT_LOOK, _RULES_SEEN
    enforcer = get_enforcer()
    if _clock() < _NEXT_LOOK:
        return enforcer
    with _LOCK:
        if _clock() >= _NEXT_LOOK:
            enforcer.use_conf = True  # (a file that changed is read again)
            enforcer.load_rules()
            # Its own checks do not look at the files again: this function does.
            enforcer.use_conf = False
            rules = {name: str(check) for name, check in enforcer.rules.items()}
            if rules != _RULES_SEEN:
                _DECISIONS.clear()
                _RULES_SEEN = rules
            _NEXT_LOOK = _clock() + RELOAD_INTERVAL
    return enforcer


def _frozen(values):
    return tuple(sorted((key, tuple(value) if isinstance(value, list) else value)
                        for key, value in values.items()))


def _decision_key(rule, ctxt, target):
    """What the enforcer's answer depends on, or None when it cannot be a key."""
    try:
        # [api] operator_projects too: rule operator_project reads it at each check.
        key = (rule, _frozen(ctxt.to_policy_values()), _frozen(target),
               tuple(CONF.api.operator_projects or ()))
        hash(key)
    except TypeError:  # a value that is not hashable: checked each time
        return None
    return key


def _allowed(rule, ctxt, target):
    enforcer = _current_enforcer()
    key = _decision_key(rule, ctxt, target)
    allowed = _DECISIONS.get(key) if key is not None else None
    if allowed is None:
        # Under the lock: a decision is never kept under rules that changed meanwhile.
        with _LOCK:
            allowed = bool(enforcer.authorize(rule, target, ctxt, do_raise=False))
            if key is not None:
                if len(_DECISIONS) >= _MAX_DECISIONS:
                    _DECISIONS.clear()
                _DECISIONS[key] = allowed
    return allowed


def benchmark_checks(on):
    """Turn this process's policy checks on or off: benchmarks/orchestration.py's
    measure of what the checks cost, and nothing else.

    With the checks off, authorize() returns at once, whoever asks. It is a function
    and not a configuration option on purpose, so that no operator setting and no
    service can turn the checks off; a unit test fails when a module of vmmig calls
    it (tests/unit/semantics/test_policy.py).
    """
    global _CHECKS
    _CHECKS = bool(on)


def authorize(ctxt, rule, target=None, action=None):
    """Raise PolicyNotAuthorized, naming ``rule``, unless ``ctxt`` passes it."""
    if not _CHECKS:
        return
    if not isinstance(ctxt, vcontext.RequestContext):
        ctxt = vcontext.RequestContext.from_dict(dict(ctxt or {}), overwrite=False)
    if target is None:
        # The project's name too: rule operator_project accepts names.
        target = {'project_id': ctxt.project_id, 'user_id': ctxt.user_id,
                  'project_name': ctxt.project_name}
    if not _allowed(rule, ctxt, target):
        LOG.warning('Policy rule %s refused %s to user %s with roles %s', rule,
                    action or rule, vcontext.who(ctxt), ctxt.roles)
        user = vcontext.who(ctxt) or '(none)'
        project = ctxt.project_name or ctxt.project_id
        if project:
            user = '%s of project %s' % (user, project)
        raise exception.PolicyNotAuthorized(rule=rule, action=action or rule, user=user,
                                            roles=', '.join(ctxt.roles) or '(none)')


def authorizes(rule):
    """Decorate an endpoint, under its ``@arguments.accepts``: its callers must pass
    ``rule``; a ``requested_by`` it takes is the context's user when the context names
    one (the argument is what a 1.4 client sent, checked all the same; the context is
    what the policy checked)."""

    def decorate(func):
        signature = inspect.signature(func)
        takes_requester = 'requested_by' in signature.parameters

        @functools.wraps(func)
        def endpoint(self, context, *args, **kwargs):
            authorize(context, rule, action=func.__name__)
            user = vcontext.who(context)
            if user and takes_requester:
                bound = signature.bind(self, context, *args, **kwargs)
                bound.arguments['requested_by'] = user
                return func(*bound.args, **bound.kwargs)
            return func(self, context, *args, **kwargs)

        guarded = messaging.expected_exceptions(exception.VmmigException)(endpoint)
        wrapped = functools.wraps(func)(lambda *a, **kw: guarded(*a, **kw))
        wrapped.policy_rule = rule
        return wrapped

    return decorate
