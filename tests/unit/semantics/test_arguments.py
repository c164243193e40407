"""Every RPC endpoint, conductor and agent, refuses malformed arguments with vmmig's error.

The bad values are derived from each endpoint's declaration (vmmig.arguments) and
sent over the in-process transport, so the answer crosses the wire as it would
between processes: an InvalidArgument naming the argument, no driver's error, no
change in the database, no file written outside the state directory.
"""

import hashlib
import inspect
import os
import time

import pytest

from tests import fixtures as vfix
from tests.unit.semantics import helpers
from vmmig.agent import manager as agent_manager
from vmmig import arguments as args
from vmmig.conductor import manager as conductor_manager
from vmmig import conf
from vmmig import exception
from vmmig import limits
from vmmig import rpc

CONF = conf.CONF
HUGE = 10 ** 30
# Allowed every call (vmmig.policies), so what refuses is the argument check.
ADMIN = helpers.as_role('admin')
# Wrong in any place that takes a scalar: containers, a bool, nothing, a huge number.
NOT_SCALARS = [[], [1], {}, {'a': 1}]


def endpoints(cls):
    """The methods of ``cls`` an RPC server dispatches to: public, taking a context."""
    out = {}
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        params = list(inspect.signature(vfix.endpoint_function(member)).parameters)
        if not name.startswith('_') and params[:2] == ['self', 'context']:
            out[name] = member
    return out


def good(kind):
    """A value ``kind`` accepts."""
    if isinstance(kind, args.Optional):
        return good(kind.kind)
    if isinstance(kind, args.HexToken):
        return 'ab12'
    if isinstance(kind, args.Int):  # Number and MigrationId too
        return kind.minimum if kind.minimum > 0 else 1 if kind.maximum >= 1 else 0
    if isinstance(kind, args.MigrationRef):
        return 1
    if isinstance(kind, args.Bool):
        return False
    if isinstance(kind, args.Choice):
        return kind.values[0]
    if isinstance(kind, (args.Name, args.Text, args.HoldReason)):
        return 'a'
    if isinstance(kind, args.Json):
        return {'any': ['thing']}
    if isinstance(kind, args.List):
        return [good(kind.item)]
    if isinstance(kind, args.Dict):
        return {key: good(kind.fields[key]) for key in kind.required}
    raise AssertionError('no good value for %r: teach this test the kind' % kind)


def bad(kind, depth=0):
    """Values ``kind`` must refuse."""
    if isinstance(kind, args.Optional):
        return bad(kind.kind, depth)
    values = [None]
    if isinstance(kind, args.HexToken):
        values += ['', '../../canary', 'AB', 'f' * (kind.max_length + 1), 5] + NOT_SCALARS
    elif isinstance(kind, args.Int):
        values += [kind.minimum - 1, kind.maximum + 1, HUGE, -HUGE, True, '1',
                   float('inf')] + NOT_SCALARS
        if type(kind) is not args.Number:
            values.append(1.5)
    elif isinstance(kind, args.MigrationRef):
        values += [0, -1, limits.MIGRATION_ID_MAX + 1, HUGE, str(HUGE), 'abc', '', True,
                   1.5] + NOT_SCALARS
    elif isinstance(kind, args.Bool):
        values += [1, 0, 'true'] + NOT_SCALARS
    elif isinstance(kind, args.Choice):
        values += ['no such choice', 5, True] + NOT_SCALARS
    elif isinstance(kind, (args.Name, args.HoldReason)):
        values += ['', '  ', 'x' * 256, 'a\nb', 'a\x1bb', 5, True] + NOT_SCALARS
    elif isinstance(kind, args.Text):
        values += ['x' * (kind.max_length + 1), 'a\x00b', 5, True, 1.5] + NOT_SCALARS
        if not kind.lines:
            values.append('a\nb')
    elif isinstance(kind, args.Json):
        values = ['x' * kind.max_bytes] if kind.max_bytes <= 1024 * 1024 else []
    elif isinstance(kind, args.List):
        values += ['x', 5, {}] + [[v] for v in bad(kind.item, depth + 1)[:3]]
        if kind.max_items <= 100000:
            values.append([None] * (kind.max_items + 1))
    elif isinstance(kind, args.Dict):
        values += ['x', 5, []]
        base = good(kind)
        values += [{k: v for k, v in base.items() if k != key} for key in kind.required]
        if kind.rest is None:
            values.append(dict(base, unexpected=1))
        if kind.max_items <= 10000:
            values.append({'k%d' % i: None for i in range(kind.max_items + 1)})
        # Deeper down, a few of each field's bad values are enough to show the path.
        for key, field in sorted(kind.fields.items()):
            for value in bad(field, depth + 1)[:3 if depth else 6]:
                if value is None and isinstance(field, args.Optional):
                    continue
                values.append(dict(base, **{key: value}))
    else:
        raise AssertionError('no bad values for %r: teach this test the kind' % kind)
    return values


def table(cls):
    """(method, argument, value sent, other arguments) for every endpoint of ``cls``."""
    rows = []
    for name, method in sorted(endpoints(cls).items()):
        declared = method.arguments
        required = {n: good(k) for n, k in declared.items()
                    if inspect.signature(method).parameters[n].default
                    is inspect.Parameter.empty}
        for argument, kind in sorted(declared.items()):
            for value in bad(kind):
                if value is None and isinstance(kind, args.Optional):
                    continue
                rows.append((name, argument, value, dict(required, **{argument: value})))
        rows.append((name, '(call)', 'unexpected', dict(required, unexpected=1)))
    return rows


@pytest.mark.parametrize('cls', [conductor_manager.ConductorManager,
                                 agent_manager.AgentManager])
def test_every_endpoint_declares_its_arguments(cls):
    methods = endpoints(cls)
    assert len(methods) > 10
    undeclared = sorted(name for name, method in methods.items()
                        if not isinstance(getattr(method, 'arguments', None), dict))
    assert not undeclared, 'endpoints without vmmig.arguments.accepts: %s' % undeclared


def test_an_undeclared_parameter_is_refused_when_the_endpoint_is_defined():
    with pytest.raises(TypeError, match='declared'):
        @args.accepts(host=args.Name('host'))
        def endpoint(self, context, host, instance):
            pass


def _state_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _dirs, files in os.walk(root) for f in files)


def _settled_dump():
    """The database once the agents' reports stopped changing it (the migration
    before the table moved a VM: the hosts' next reports show it)."""
    dumps = [helpers.stable_dump()]

    def settled():
        dumps.append(helpers.stable_dump())
        return dumps[-1] == dumps[-2]
    helpers.wait_for(lambda: time.sleep(0.5) or settled(), 30, 'the reports to settle')
    return dumps[-1]


def _check_table(cloud, rows, prepare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / 'canary'
    canary.write_text('still here')
    client = rpc.get_client('unused', '1.2')
    before = _settled_dump()
    files = _state_files(cloud.state_path)
    wrong = []
    for method, argument, value, kwargs in rows:
        try:
            answer = prepare(client).call(ADMIN(), method, **kwargs)
        except exception.InvalidArgument as e:
            if not (e.kwargs.get('method') == method and (
                    e.kwargs.get('argument', '').startswith(argument))):
                wrong.append((method, argument, repr(value)[:80], 'names %s of %s' % (
                    e.kwargs.get('argument'), e.kwargs.get('method'))))
        except Exception as e:  # noqa: anything else is what this test is for
            wrong.append((method, argument, repr(value)[:80], '%s: %s' % (
                type(e).__name__, str(e)[:200])))
        else:
            wrong.append((method, argument, repr(value)[:80], 'accepted: %r' % (answer,)))
    assert not wrong, '%d of %d calls not refused as they should be:\n%s' % (
        len(wrong), len(rows), '\n'.join(map(str, wrong[:40])))
    assert helpers.stable_dump() == before
    assert _state_files(cloud.state_path) == files
    assert sorted(os.listdir(tmp_path)) == ['canary']
    assert canary.read_text() == 'still here'


def test_the_conductor_refuses_every_malformed_argument(make_cloud, tmp_path, monkeypatch):
    cloud = make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    migration = cloud.run('vm1', 'live', host='b')
    assert migration['state'] == 'completed'
    rows = table(conductor_manager.ConductorManager)
    _check_table(cloud, rows, lambda client: client.prepare(
        topic=CONF.conductor.topic, version='1.2', timeout=10), tmp_path, monkeypatch)


def test_the_agents_refuse_every_malformed_argument(make_cloud, tmp_path, monkeypatch):
    """Host a has an agent of its own; b is served by a group's process, whose router
    picks the agent by the ``host`` argument."""
    cloud = make_cloud(helpers.cluster({'vm1': helpers.vm('a', location='local')}),
                       agent_groups={'group': ['b']})
    rows = table(agent_manager.AgentManager)
    _check_table(cloud, rows, lambda client: client.prepare(
        topic=CONF.agent.topic, server='a', version='1.2', timeout=10), tmp_path, monkeypatch)
    routed = [(m, a, v, dict(kw, host='b')) for m, a, v, kw in rows[::7]]
    routed += [(m, 'host', v, dict(kw, host=v)) for m, _a, _v, kw in rows[:1]
               for v in bad(args.Name('host'))]
    _check_table(cloud, routed, lambda client: client.prepare(
        topic=CONF.agent.topic, server='group', version='1.2', timeout=10), tmp_path,
        monkeypatch)


def test_what_reached_the_database_before_is_refused_by_name(make_cloud):
    """The calls issue 16 found answered with a driver's error quoting SQL, or taken."""
    cloud = make_cloud(helpers.cluster({'vm1': helpers.vm('a')}))
    before = _settled_dump()
    calls = [
        ('migration', lambda: cloud.api.migration_get([1])),
        ('migration', lambda: cloud.api.migration_get(HUGE)),
        ('host', lambda: cloud.api.migrate_server('vm1', 'live', host=['b'])),
        ('hold_reason', lambda: cloud.api.migrate_server('vm1', 'live', host='b',
                                                         hold_reason={'why': 'x'})),
        ('max_downtime', lambda: cloud.api.migrate_server('vm1', 'live', host='b', options={
            'max_downtime': HUGE})),
    ]
    for argument, call in calls:
        with pytest.raises(exception.Invalid) as refused:
            call()
        assert argument in str(refused.value)
        assert 'SQL' not in str(refused.value) and 'sqlite' not in str(refused.value)
    assert helpers.stable_dump() == before
    assert cloud.on('a', 'vm1')['power_state'] == 'running'
    assert cloud.hosts_of('vm1') == ['a']


def test_a_cold_copy_is_checked_against_what_the_conductor_recorded(make_cloud):
    """The source agent's sizes and checksums go into the record; the receiver's copy
    matches them, and each file's token was good for that one fetch."""
    cloud = make_cloud(helpers.cluster({'vm1': helpers.vm('a', location='local',
                                                          power_state='shutoff')}))
    record = cloud.run('vm1', 'cold', host='b')
    assert record['state'] == 'completed', record['reason']
    assert cloud.hosts_of('vm1') == ['b']
    assert cloud.on('b', 'vm1')['power_state'] == 'shutoff'
    [offered] = record['offered_files']
    [disk] = cloud.on('b', 'vm1')['disks']
    with open(disk['path'], 'rb') as f:
        data = f.read()
    assert offered['size'] == len(data)
    assert offered['sha256'] == hashlib.sha256(data).hexdigest()
