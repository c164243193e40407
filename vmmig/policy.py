"""Who may call what: the oslo.policy enforcer and the decorator of conductor endpoints.

Each endpoint names its rule once, ``@policy.authorizes('vmmig:migration:create')``;
the rule is checked against the request context before the arguments are and
before anything else runs, so a refused request changes nothing. The defaults
are in vmmig.policies; an operator overrides them in [oslo_policy] policy_file.
"""

import functools
import inspect
import logging

import oslo_messaging as messaging
from oslo_policy import policy

from vmmig import conf
from vmmig import context as vcontext
from vmmig import exception
from vmmig import policies

LOG = logging.getLogger(__name__)
CONF = conf.CONF

_ENFORCER = None


def get_enforcer():
    """The enforcer, its defaults registered (oslopolicy-* tools call it too)."""
    global _ENFORCER
    if _ENFORCER is None:
        _ENFORCER = policy.Enforcer(CONF)
        _ENFORCER.register_defaults(policies.list_rules())
    return _ENFORCER


def reset():
    global _ENFORCER
    if _ENFORCER is not None:
        _ENFORCER.clear()
    _ENFORCER = None


def authorize(ctxt, rule, target=None, action=None):
    """Raise PolicyNotAuthorized, naming ``rule``, unless ``ctxt`` passes it."""
    if not isinstance(ctxt, vcontext.RequestContext):
        ctxt = vcontext.RequestContext.from_dict(dict(ctxt or {}), overwrite=False)
    if target is None:
        # The project's name too: rule operator_project accepts names.
        target = {'project_id': ctxt.project_id, 'user_id': ctxt.user_id,
                  'project_name': ctxt.project_name}
    try:
        get_enforcer().authorize(rule, target, ctxt, do_raise=True)
    except policy.PolicyNotAuthorized:
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
