"""Every conductor endpoint has a policy rule, enforced as the defaults say, over RPC.

Calls go over the in-process transport with a request context of one role: an
admin may do everything; a reader only reads; a member nothing; a vmmig service
(an agent) only reports. A refused call names its rule and leaves the database
as it was; a record made by a request keeps the context's user as who asked.
"""

import os

import pytest

from tests.unit.semantics import helpers
from tests.unit.semantics import test_arguments
from vmmig.conductor import manager as conductor_manager
from vmmig import conf
from vmmig import context as vcontext
from vmmig import exception
from vmmig import policies
from vmmig import policy
from vmmig import rpc

CONF = conf.CONF

# The defaults, written out here as the issue states them (not read from vmmig.policies).
READS = {'migration_list', 'migration_get', 'host_list', 'instance_list',
         'host_eligible', 'plan_list', 'plan_get'}
REPORTS = {'heartbeat', 'agent_started', 'migration_progress', 'host_health'}
ALLOWED = {
    'admin': None,  # everything
    'reader': READS,
    'member': set(),
    'service': REPORTS,
}


def _endpoints():
    return test_arguments.endpoints(conductor_manager.ConductorManager)


def test_every_conductor_endpoint_has_a_registered_rule():
    registered = {rule.name for rule in policies.list_rules()}
    missing = sorted(name for name, method in _endpoints().items()
                     if getattr(method, 'policy_rule', None) not in registered)
    assert not missing, 'conductor endpoints without a policy rule: %s' % missing
    # Each endpoint a rule of its own: an operator can open one without the others.
    rules = [method.policy_rule for method in _endpoints().values()]
    assert len(rules) == len(set(rules))


# Moves, holds, aborts and host operations: admins only.
CHANGES = {'migrate_server', 'evacuate_host', 'migration_abort', 'migration_force_complete',
           'migration_hold', 'migration_resume', 'host_maintenance_set',
           'host_maintenance_unset', 'plan_execute', 'plan_abort'}


def test_the_expected_table_covers_every_endpoint():
    # A new endpoint must be placed in one of the three, by a person.
    assert READS | REPORTS | CHANGES == set(_endpoints())
    assert not (READS & CHANGES or READS & REPORTS or REPORTS & CHANGES)


def _call(method, role, user='someone'):
    declared = _endpoints()[method].arguments
    kwargs = {name: test_arguments.good(kind) for name, kind in declared.items()}
    ctxt = vcontext.new(user, [role])
    # Reports through the report topic's endpoint, the rest through the operators' one.
    topic = CONF.conductor.report_topic if method in REPORTS else CONF.conductor.topic
    client = rpc.get_client(topic, '1.6')
    return client.prepare(version='1.6', timeout=10).call(ctxt, method, **kwargs)


@pytest.mark.parametrize('role', sorted(ALLOWED))
def test_each_role_is_allowed_or_refused_as_the_defaults_say(make_cloud, role):
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}),
               **{'conductor.reports_on_operator_topic': False})
    policy.reset()
    wrong = []
    for method, endpoint in sorted(_endpoints().items()):
        allowed = ALLOWED[role] is None or method in ALLOWED[role]
        before = helpers.stable_dump()
        try:
            _call(method, role)
        except exception.PolicyNotAuthorized as e:
            if allowed:
                wrong.append('%s: refused (%s)' % (method, e))
            elif endpoint.policy_rule not in str(e) or role not in str(e):
                wrong.append('%s: the refusal does not name its rule and roles: %s'
                             % (method, e))
            elif helpers.stable_dump() != before:
                wrong.append('%s: refused, yet the database changed' % method)
        except exception.VmmigException:
            if not allowed:
                wrong.append('%s: not refused by the policy' % method)
        else:
            if not allowed:
                wrong.append('%s: accepted' % method)
    assert not wrong, 'role %s:\n%s' % (role, '\n'.join(wrong))


def test_an_old_client_with_an_empty_context_is_refused(make_cloud):
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    before = helpers.stable_dump()
    client = rpc.get_client(CONF.conductor.topic, '1.5')
    with pytest.raises(exception.PolicyNotAuthorized, match='vmmig:migration:create'):
        client.prepare(timeout=10).call({}, 'migrate_server', instance='vm1',
                                        migration_type='live', host='b', options={},
                                        hold_reason=None, requested_by='mallory')
    assert helpers.stable_dump() == before


def test_a_record_keeps_the_user_of_the_context(make_cloud):
    """The context's user, not the requested_by argument (a client may write anything
    there), is who asked, on the record and on a plan; a held migration's held_by is
    that user too."""
    make_cloud(helpers.cluster({'vm1': helpers.vm('a'), 'vm2': helpers.vm('a')}))
    api = helpers.api_as('alice')
    held = api.migrate_server('vm1', 'live', host='b', hold_reason='window',
                              requested_by='mallory')
    assert (held['state'], held['held_by'], held['requested_by']) == (
        'held', 'alice', 'alice')
    moved = api.migrate_server('vm2', 'live', host='b', requested_by='mallory')
    assert api.migration_get(moved['id'])['requested_by'] == 'alice'
    plan = api.host_maintenance_set('a', 'disk swap', requested_by='mallory')
    assert plan['requested_by'] == 'alice'
    assert helpers.api_as('bob', 'reader').plan_get(plan['id'])['requested_by'] == 'alice'


def test_an_operator_policy_file_overrides_a_default(make_cloud, tmp_path):
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    rules = tmp_path / 'policy.yaml'
    rules.write_text('"vmmig:migration:list": "role:member"\n')
    CONF.set_override('policy_file', str(rules), group='oslo_policy')
    policy.reset()
    try:
        assert helpers.api_as('m', 'member').migration_list() == []
        with pytest.raises(exception.PolicyNotAuthorized, match='vmmig:migration:list'):
            helpers.api_as('r', 'reader').migration_list()
    finally:
        CONF.clear_override('policy_file', group='oslo_policy')
        policy.reset()


def test_the_benchmark_switch_turns_the_checks_off_and_on_again(make_cloud):
    """benchmarks/orchestration.py measures the checks by turning them off; on again,
    an empty context is refused as before."""
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    client = rpc.get_client(CONF.conductor.topic, '1.5')
    policy.benchmark_checks(False)
    try:
        assert client.prepare(timeout=10).call({}, 'migration_list') == []
    finally:
        policy.benchmark_checks(True)
    with pytest.raises(exception.PolicyNotAuthorized, match='vmmig:migration:list'):
        client.prepare(timeout=10).call({}, 'migration_list')


def test_no_module_of_vmmig_turns_the_checks_off():
    """The switch is for the benchmark: a service or a setting that turned it off
    would let anyone do anything."""
    import pathlib

    import vmmig
    root = pathlib.Path(vmmig.__file__).parent
    callers = sorted(str(path.relative_to(root)) for path in root.rglob('*.py')
                     if path != root / 'policy.py'
                     and 'benchmark_checks' in path.read_text())
    assert not callers, 'modules of vmmig that call policy.benchmark_checks: %s' % callers
    assert policy._CHECKS is True


class _Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_check_does_not_look_for_the_policy_files_each_time(make_cloud, monkeypatch):
    """oslo.policy searches the config directories for the policy files at every check,
    which cost the conductor more than the check; they are looked at once a
    RELOAD_INTERVAL."""
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    monkeypatch.setattr(policy, '_clock', _Clock(), raising=False)
    policy.reset()
    enforcer = policy.get_enforcer()
    looks = []
    real = enforcer._get_policy_path
    monkeypatch.setattr(enforcer, '_get_policy_path',
                        lambda path: looks.append(path) or real(path))
    admin, member = vcontext.new('a', ['admin']), vcontext.new('m', ['member'])
    for _ in range(50):
        policy.authorize(admin, 'vmmig:migration:create')
        with pytest.raises(exception.PolicyNotAuthorized):
            policy.authorize(member, 'vmmig:migration:create')
    # One look: the policy file and the policy directory.
    assert len(looks) <= 2, looks
    policy.reset()


def test_an_edited_policy_file_is_in_force_after_the_reload_interval(make_cloud, tmp_path):
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    clock = _Clock()
    rules = tmp_path / 'policy.yaml'
    rules.write_text('"vmmig:migration:list": "role:member"\n')
    CONF.set_override('policy_file', str(rules), group='oslo_policy')
    policy.reset()
    member = vcontext.new('m', ['member'])
    original = policy._clock
    policy._clock = clock
    try:
        policy.authorize(member, 'vmmig:migration:list')
        rules.write_text('"vmmig:migration:list": "role:reader"\n')
        stat = rules.stat()
        os.utime(rules, (stat.st_atime + 10, stat.st_mtime + 10))
        policy.authorize(member, 'vmmig:migration:list')  # not looked at yet
        clock.now += policy.RELOAD_INTERVAL
        with pytest.raises(exception.PolicyNotAuthorized, match='vmmig:migration:list'):
            policy.authorize(member, 'vmmig:migration:list')
        policy.authorize(vcontext.new('r', ['reader']), 'vmmig:migration:list')
    finally:
        policy._clock = original
        CONF.clear_override('policy_file', group='oslo_policy')
        policy.reset()


def test_a_kept_decision_is_the_one_of_those_credentials(make_cloud):
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    policy.reset()
    for _ in range(3):
        policy.authorize(vcontext.new('a', ['admin']), 'vmmig:migration:create')
        for roles in (['reader'], ['member'], [], ['service']):
            with pytest.raises(exception.PolicyNotAuthorized):
                policy.authorize(vcontext.new('a', roles), 'vmmig:migration:create')
        policy.authorize(vcontext.new('a', ['reader']), 'vmmig:migration:list')
        policy.authorize(vcontext.new('a', ['reader', 'member']), 'vmmig:migration:list')


def test_a_kept_decision_follows_the_operator_projects(make_cloud):
    # Rule operator_project reads [api] operator_projects at each check: a decision
    # kept under one list is not the answer under another.
    make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    policy.reset()
    ctxt = vcontext.new('a', ['admin'], project_id='p-other', project_name='other')
    policy.authorize(ctxt, 'vmmig:migration:create')
    CONF.set_override('operator_projects', ['ops'], group='api')
    try:
        with pytest.raises(exception.PolicyNotAuthorized):
            policy.authorize(ctxt, 'vmmig:migration:create')
    finally:
        CONF.clear_override('operator_projects', group='api')
    policy.authorize(ctxt, 'vmmig:migration:create')
