"""The records of the HA monitor: one per failure of a host (see models.Recovery).

A recovery is created under the dispatch lock, and only for a host that is down
with no recovery since its last heartbeat: two monitors that both believe they
are the active one (a lock that expired under a paused process) record one.
"""

import sqlalchemy as sa

from vmmig.db import api
from vmmig.db import models
from vmmig.db import queries
from vmmig import exception

_RECOVERIES = models.Recovery.__table__
_HOSTS = models.Host.__table__

FENCING = 'fencing'
RECOVERING = 'recovering'
SUCCEEDED = 'succeeded'
PARTIAL = 'partial'
FAILED = 'failed'
REPORTED = 'reported'
UNFINISHED = (FENCING, RECOVERING)


@api.retry_on_deadlock
def create(host, owner, method, state=FENCING, reason=None):
    """A recovery of the failure of ``host`` now, or None: the host is up again, or
    this failure has a recovery already."""
    with api._connection() as conn:
        api._lock_dispatch(conn)
        row = api._one(conn, queries.HOST_BY_NAME, {'b_name': host})
        if row is None or row['state'] != 'down':
            return None
        since = row['last_heartbeat'] or 0
        other = conn.execute(sa.select(_RECOVERIES.c.id).where(
            _RECOVERIES.c.host == host, _RECOVERIES.c.created_at >= since)).first()
        if other is not None:
            return None
        now = api._now()
        values = dict(host=host, owner=owner, method=method, state=state, reason=reason,
                      items=[], created_at=now, updated_at=now,
                      finished_at=None if state in UNFINISHED else now)
        values['id'] = conn.execute(sa.insert(_RECOVERIES).values(
            **values)).inserted_primary_key[0]
        return dict(values, fenced_at=None)


@api.retry_on_deadlock
def update(recovery_id, owner, **values):
    """Change a recovery this ``owner`` still holds; False if another took it over."""
    values['updated_at'] = api._now()
    if values.get('state') and values['state'] not in UNFINISHED:
        values.setdefault('finished_at', values['updated_at'])
    with api._connection() as conn:
        return conn.execute(sa.update(_RECOVERIES).where(
            _RECOVERIES.c.id == recovery_id, _RECOVERIES.c.owner == owner)
            .values(**values)).rowcount == 1


@api.retry_on_deadlock
def adopt(recovery_id, old_owner, new_owner):
    """Take over the unfinished recovery of a monitor that is no longer active."""
    with api._connection() as conn:
        query = sa.update(_RECOVERIES).where(_RECOVERIES.c.id == recovery_id,
                                             _RECOVERIES.c.state.in_(UNFINISHED))
        query = query.where(_RECOVERIES.c.owner == old_owner) if old_owner is not None \
            else query.where(_RECOVERIES.c.owner.is_(None))
        return conn.execute(query.values(owner=new_owner,
                                         updated_at=api._now())).rowcount == 1


def latest():
    """{host: when its newest recovery was created}: the monitor's look at which
    failures have one, without taking the dispatch lock for each dead host."""
    with api._connection() as conn:
        return dict(conn.execute(sa.select(_RECOVERIES.c.host,
                                           sa.func.max(_RECOVERIES.c.created_at))
                                 .group_by(_RECOVERIES.c.host)).all())


def get(recovery_id):
    with api._connection() as conn:
        row = api._one(conn, sa.select(_RECOVERIES).where(_RECOVERIES.c.id == recovery_id))
    if row is None:
        raise exception.NotFound(what='recovery %s' % recovery_id)
    return row


def list_(host=None, state=None):
    query = sa.select(_RECOVERIES).order_by(_RECOVERIES.c.id)
    if host:
        query = query.where(_RECOVERIES.c.host == host)
    if state:
        query = query.where(_RECOVERIES.c.state.in_(
            [state] if isinstance(state, str) else list(state)))
    with api._connection() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
