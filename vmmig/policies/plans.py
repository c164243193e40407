"""Rules of the conductor's action plan endpoints."""

from oslo_policy import policy

from vmmig.policies import base


def _rule(name, check_str, description, method):
    return policy.DocumentedRuleDefault(
        name='vmmig:plan:%s' % name, check_str=check_str, description=description,
        operations=[{'path': method, 'method': 'RPC'}])


rules = [
    _rule('list', base.READER, 'List action plans.', 'plan_list'),
    _rule('get', base.READER, 'Show one action plan.', 'plan_get'),
    _rule('execute', base.ADMIN, 'Execute a recommended plan.', 'plan_execute'),
    _rule('abort', base.ADMIN, 'Abort a plan.', 'plan_abort'),
]


def list_rules():
    return rules
