"""The database side of action plans: plans, their actions, maintenance of a host.

Beside db/api.py (the migrations), with the same rule: every change of a plan's
or an action's state is a guarded update (``UPDATE ... WHERE state IN (...)``),
so two conductors advancing one plan cannot both end it, nor both record the
migration of one action (migrations.action_id is unique, and checked under the
dispatch lock by db.api.migration_create).
"""

import time
import uuid as uuidlib

import sqlalchemy as sa

from vmmig.db import api
from vmmig.db import models
from vmmig import exception
from vmmig.plans import states

_PLANS = models.ActionPlan.__table__
_ACTIONS = models.PlanAction.__table__
_HOSTS = models.Host.__table__
_MIGRATIONS = models.Migration.__table__

_connection = api._connection
retry_on_deadlock = api.retry_on_deadlock


def _now():
    return time.time()


def _plan_row(conn, ident):
    if isinstance(ident, str) and not ident.isdigit():
        where = _PLANS.c.uuid == ident
    else:
        try:
            where = _PLANS.c.id == int(ident)
        except (TypeError, ValueError):
            raise exception.PlanNotFound(plan=ident)
    row = conn.execute(sa.select(_PLANS).where(where)).mappings().first()
    if row is None:
        raise exception.PlanNotFound(plan=ident)
    return dict(row)


def _actions(conn, plan_ids):
    rows = conn.execute(sa.select(_ACTIONS).where(_ACTIONS.c.plan_id.in_(list(plan_ids)))
                        .order_by(_ACTIONS.c.plan_id, _ACTIONS.c.position)).mappings()
    return [dict(r) for r in rows]


def _with_actions(conn, plan):
    plan['actions'] = _actions(conn, [plan['id']])
    return plan


@retry_on_deadlock
def plan_create(plan, actions, maintenance_reason=None):
    """Record a plan and its actions; with ``maintenance_reason`` its host goes into
    maintenance in the same transaction (refused if it is already)."""
    now = _now()
    values = dict(plan, uuid=str(uuidlib.uuid4()), created_at=now, updated_at=now)
    values.setdefault('options', {})
    values.setdefault('abort_requested', False)
    with _connection() as conn:
        if maintenance_reason is not None:
            _maintenance_on(conn, plan['host'], maintenance_reason, now)
        return _insert(conn, values, actions, now)


def _insert(conn, values, actions, now):
    if values['state'] == states.ONGOING:
        values['started_at'] = now
    if values['state'] in states.TERMINAL:
        values['finished_at'] = now
    plan_id = conn.execute(sa.insert(_PLANS).values(**values)).inserted_primary_key[0]
    for position, action in enumerate(actions, 1):
        row = dict(action, plan_id=plan_id, position=position, updated_at=now)
        row.setdefault('options', {})
        row.setdefault('state', states.PENDING)
        conn.execute(sa.insert(_ACTIONS).values(**row))
    return _with_actions(conn, _plan_row(conn, plan_id))


#: the strategy of the HA monitor's plans: one per failure of a host
RECOVERY = 'evacuate'


@retry_on_deadlock
def recovery_plan_create(plan, actions, maintenance_reason=None):
    """Record the HA monitor's plan for the failure of ``plan['host']``, or None: the
    host is up again, or this failure has a plan already (one created after the
    host's last heartbeat). Under the dispatch lock, so two monitors that both
    believe they are active record one. With ``maintenance_reason`` the host leaves
    placement in the same transaction (an operator's reason, if set meanwhile, stays).
    """
    now = _now()
    values = dict(plan, strategy=RECOVERY, uuid=str(uuidlib.uuid4()), created_at=now,
                  updated_at=now)
    values.setdefault('options', {})
    values.setdefault('abort_requested', False)
    with _connection() as conn:
        api._lock_dispatch(conn)
        host = conn.execute(sa.select(_HOSTS.c.state, _HOSTS.c.last_heartbeat)
                            .where(_HOSTS.c.name == plan['host'])).first()
        if host is None or host.state != 'down':
            return None
        other = conn.execute(sa.select(_PLANS.c.id).where(
            _PLANS.c.host == plan['host'], _PLANS.c.strategy == RECOVERY,
            _PLANS.c.created_at >= (host.last_heartbeat or 0))).first()
        if other is not None:
            return None
        if maintenance_reason is not None:
            conn.execute(sa.update(_HOSTS).where(_HOSTS.c.name == plan['host'],
                                                 _HOSTS.c.maintenance.is_(False))
                         .values(maintenance=True, maintenance_reason=maintenance_reason,
                                 updated_at=now))
        return _insert(conn, values, actions, now)


def latest_recoveries():
    """{host: when its newest HA plan was created}: the monitor's look at which
    failures have one, without taking the dispatch lock for each dead host."""
    with _connection() as conn:
        return dict(conn.execute(sa.select(_PLANS.c.host, sa.func.max(_PLANS.c.created_at))
                                 .where(_PLANS.c.strategy == RECOVERY)
                                 .group_by(_PLANS.c.host)).all())


def _maintenance_on(conn, host, reason, now):
    done = conn.execute(sa.update(_HOSTS).where(_HOSTS.c.name == host,
                                                _HOSTS.c.maintenance.is_(False))
                        .values(maintenance=True, maintenance_reason=reason,
                                updated_at=now)).rowcount
    if not done:
        row = conn.execute(sa.select(_HOSTS.c.maintenance_reason)
                           .where(_HOSTS.c.name == host)).first()
        if row is None:
            raise exception.HostNotFound(host=host)
        raise exception.HostInMaintenance(host=host, why=': %s' % row.maintenance_reason
                                          if row.maintenance_reason else '')


@retry_on_deadlock
def maintenance_unset(host):
    """Take ``host`` out of maintenance; refused (HostNotInMaintenance) if it is not."""
    with _connection() as conn:
        done = conn.execute(sa.update(_HOSTS).where(_HOSTS.c.name == host,
                                                    _HOSTS.c.maintenance.is_(True))
                            .values(maintenance=False, maintenance_reason=None,
                                    updated_at=_now())).rowcount
        if not done:
            if conn.execute(sa.select(_HOSTS.c.id).where(_HOSTS.c.name == host)).first() \
                    is None:
                raise exception.HostNotFound(host=host)
            raise exception.HostNotInMaintenance(host=host)
        return dict(conn.execute(sa.select(_HOSTS).where(_HOSTS.c.name == host))
                    .mappings().first())


def plan_get(ident):
    with _connection() as conn:
        return _with_actions(conn, _plan_row(conn, ident))


def plan_list(state=None, host=None, with_actions=False, strategy=None):
    query = sa.select(_PLANS).order_by(_PLANS.c.id)
    if strategy:
        query = query.where(_PLANS.c.strategy == strategy)
    if state:
        query = query.where(_PLANS.c.state.in_([state] if isinstance(state, str)
                                               else list(state)))
    if host:
        query = query.where(_PLANS.c.host == host)
    with _connection() as conn:
        plans = [dict(p) for p in conn.execute(query).mappings()]
        if with_actions and plans:
            by_plan = {}
            for action in _actions(conn, [p['id'] for p in plans]):
                by_plan.setdefault(action['plan_id'], []).append(action)
            for plan in plans:
                plan['actions'] = by_plan.get(plan['id'], [])
        return plans


@retry_on_deadlock
def plan_transition(plan_id, expected, target, **values):
    """Move a plan from one of ``expected`` to ``target``, or raise PlanStateConflict."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for source in expected:
        if not states.allowed(source, target):
            raise ValueError('plan transition %s -> %s is not in the table' % (source, target))
    now = _now()
    values.update(state=target, updated_at=now)
    if target == states.ONGOING:
        values.setdefault('started_at', now)
    if target in states.TERMINAL:
        values.setdefault('finished_at', now)
    with _connection() as conn:
        done = conn.execute(sa.update(_PLANS).where(_PLANS.c.id == plan_id,
                                                    _PLANS.c.state.in_(expected))
                            .values(**values)).rowcount
        plan = _plan_row(conn, plan_id)
        if not done:
            raise exception.PlanStateConflict(plan=plan_id, expected='/'.join(expected),
                                              actual=plan['state'], target=target)
        return _with_actions(conn, plan)


@retry_on_deadlock
def plan_update(plan_id, expected, **values):
    """Change fields other than the state while the plan is in ``expected``."""
    values['updated_at'] = _now()
    with _connection() as conn:
        return conn.execute(sa.update(_PLANS).where(
            _PLANS.c.id == plan_id, _PLANS.c.state.in_(tuple(expected)))
            .values(**values)).rowcount == 1


@retry_on_deadlock
def action_transition(action_id, expected, target, **values):
    """Move an action from one of ``expected`` to ``target``: True if this call did."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for source in expected:
        if not states.allowed(source, target, states.ACTION_TRANSITIONS):
            raise ValueError('action transition %s -> %s is not in the table'
                             % (source, target))
    values.update(state=target, updated_at=_now())
    with _connection() as conn:
        return conn.execute(sa.update(_ACTIONS).where(_ACTIONS.c.id == action_id,
                                                      _ACTIONS.c.state.in_(expected))
                            .values(**values)).rowcount == 1


@retry_on_deadlock
def action_fallback(action, reason, fallback):
    """End ``action`` failed with ``reason`` and add ``fallback`` (an action's values)
    after the plan's last one, both or neither: only one conductor adds it."""
    now = _now()
    with _connection() as conn:
        done = conn.execute(sa.update(_ACTIONS).where(
            _ACTIONS.c.id == action['id'], _ACTIONS.c.state == states.RECORDED)
            .values(state=states.ACTION_FAILED, reason=reason, updated_at=now)).rowcount
        if not done:
            return None
        last = conn.execute(sa.select(sa.func.max(_ACTIONS.c.position))
                            .where(_ACTIONS.c.plan_id == action['plan_id'])).scalar()
        row = dict(fallback, plan_id=action['plan_id'], position=(last or 0) + 1,
                   fallback_of=action['id'], state=states.PENDING, updated_at=now)
        row.setdefault('options', {})
        return conn.execute(sa.insert(_ACTIONS).values(**row)).inserted_primary_key[0]


def migration_of_action(action_id):
    """The migration recorded for an action, or None."""
    with _connection() as conn:
        row = conn.execute(sa.select(_MIGRATIONS).where(
            _MIGRATIONS.c.action_id == action_id)).mappings().first()
        return dict(row) if row is not None else None


def migrations_of_plan(plan_id):
    """{action id: migration} of every action of the plan that has one."""
    with _connection() as conn:
        rows = conn.execute(sa.select(_MIGRATIONS).join(
            _ACTIONS, _ACTIONS.c.id == _MIGRATIONS.c.action_id)
            .where(_ACTIONS.c.plan_id == plan_id)).mappings()
        return {r['action_id']: dict(r) for r in rows}


def drain_progress(hosts):
    """{host: the latest plan of each of ``hosts``, with its actions}."""
    if not hosts:
        return {}
    with _connection() as conn:
        latest = (sa.select(sa.func.max(_PLANS.c.id)).where(_PLANS.c.host.in_(list(hosts)))
                  .group_by(_PLANS.c.host))
        plans = [dict(p) for p in conn.execute(sa.select(_PLANS).where(
            _PLANS.c.id.in_(latest))).mappings()]
        by_plan = {}
        for action in _actions(conn, [p['id'] for p in plans]) if plans else ():
            by_plan.setdefault(action['plan_id'], []).append(action)
        return {p['host']: dict(p, actions=by_plan.get(p['id'], [])) for p in plans}
