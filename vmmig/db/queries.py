"""The statements of the hot paths, built once.

Building a SQLAlchemy statement costs more than running it: about 0.5 ms for the
room query below, against 0.06 ms to execute it once built (SQLite, in memory).
A busy conductor runs some twenty of these per migration, so each is built
once per shape and given its values as bound parameters at execution. (The
compiled form is cached by SQLAlchemy either way; the construction is not.)

Bound parameters are named ``b_*``: in an UPDATE the plain column names are
the values of its SET clause.
"""

import functools

import sqlalchemy as sa

from vmmig.db import models
from vmmig.db import states

HOSTS = models.Host.__table__
INSTANCES = models.Instance.__table__
MIGRATIONS = models.Migration.__table__
SERVICES = models.Service.__table__

#: states in which a migration takes room on its destination (a held one gives its
#: room up: it is checked again when resumed)
TAKES_ROOM = (states.QUEUED,) + tuple(sorted(states.ACTIVE))

_b = sa.bindparam


def _expanding(name):
    return sa.bindparam(name, expanding=True)


INSTANCE_BY_NAME = sa.select(INSTANCES).where(INSTANCES.c.name == _b('b_name'))
HOST_BY_NAME = sa.select(HOSTS).where(HOSTS.c.name == _b('b_name'))
HOSTS_BY_NAMES = sa.select(HOSTS).where(HOSTS.c.name.in_(_expanding('b_names')))
HOST_VERSIONS = sa.select(HOSTS.c.name, HOSTS.c.updated_at)
MIGRATION_BY_ID = sa.select(MIGRATIONS).where(MIGRATIONS.c.id == _b('b_id'))
MIGRATIONS_OF_INSTANCE = (sa.select(MIGRATIONS)
                          .where(MIGRATIONS.c.instance == _b('b_instance'),
                                 MIGRATIONS.c.state.in_(_expanding('b_states')))
                          .order_by(MIGRATIONS.c.id))
DISPATCH_LOCK = (sa.select(SERVICES.c.id).where(SERVICES.c.name == _b('b_name'))
                 .with_for_update())
INSERT_MIGRATION = sa.insert(MIGRATIONS)


@functools.lru_cache(maxsize=None)
def migrations_around(with_instance):
    """What a new record is checked against under the dispatch lock, in one read:
    the active migrations (the limits), the oldest queued one (whether anything
    waits before it) and, ``with_instance``, the instance's migrations in
    ``b_unfinished``."""
    m = MIGRATIONS
    oldest_queued = (sa.select(sa.func.min(m.c.id)).where(m.c.state == states.QUEUED)
                     .scalar_subquery())
    around = [m.c.state.in_(tuple(sorted(states.ACTIVE))), m.c.id == oldest_queued]
    if with_instance:
        around.append(sa.and_(m.c.instance == _b('b_instance'),
                              m.c.state.in_(_expanding('b_unfinished'))))
    return (sa.select(m.c.id, m.c.instance, m.c.state, m.c.source_host, m.c.dest_host)
            .where(sa.or_(*around)).order_by(m.c.id))


@functools.lru_cache(maxsize=None)
def inbound(by_host, excluding):
    """The room of migrations on their way, by destination (see db.api._inbound):
    ``b_since`` is the oldest end that still counts; ``by_host``, only to ``b_host``;
    ``excluding``, without migration ``b_exclude``."""
    m, h, i = MIGRATIONS, HOSTS, INSTANCES
    reported = sa.func.coalesce(h.c.reported_at, 0)
    # Where the VM was when its destination last reported: the source of its first
    # move after that report (this one, or an earlier one that took it away again).
    later = MIGRATIONS.alias('later')
    there_at_report = (sa.select(later.c.source_host)
                       .where(later.c.instance == m.c.instance,
                              later.c.state == states.COMPLETED,
                              later.c.finished_at >= reported)
                       .order_by(later.c.finished_at, later.c.id)
                       .limit(1).scalar_subquery())
    unseen = sa.and_(m.c.state == states.COMPLETED, m.c.finished_at > _b('b_since'),
                     m.c.finished_at >= reported,
                     # The VM is still there (it may have moved on since)...
                     i.c.host == m.c.dest_host,
                     # ...and the facts of that report do not show it already.
                     there_at_report != m.c.dest_host)
    query = (sa.select(m.c.dest_host, sa.func.sum(m.c.dest_vcpus),
                       sa.func.sum(m.c.dest_memory_mb), sa.func.sum(m.c.dest_disk_gb),
                       sa.func.count())
             .select_from(m.join(h, h.c.name == m.c.dest_host)
                          .outerjoin(i, i.c.name == m.c.instance))
             .where(sa.or_(m.c.state.in_(TAKES_ROOM), unseen),
                    m.c.dest_memory_mb.is_not(None))
             .group_by(m.c.dest_host))
    if by_host:
        query = query.where(m.c.dest_host == _b('b_host'))
    if excluding:
        query = query.where(m.c.id != _b('b_exclude'))
    return query


@functools.lru_cache(maxsize=None)
def transition(expected_count, by_owner, unless_abort, returning):
    """The guarded update of a migration's state: ``b_id`` in one of ``b_expected_<i>``,
    ``by_owner`` owned by ``b_owner``, ``unless_abort`` not asked to abort; the SET
    values are the parameters named after columns."""
    m = MIGRATIONS
    query = sa.update(m).where(m.c.id == _b('b_id'), m.c.state.in_(
        [_b('b_expected_%d' % i) for i in range(expected_count)]))
    if by_owner:
        query = query.where(m.c.owner == _b('b_owner'))
    if unless_abort:
        query = query.where(m.c.abort_requested.is_(False))
    return query.returning(*m.c) if returning else query


@functools.lru_cache(maxsize=None)
def migration_update(expected_count):
    m = MIGRATIONS
    query = sa.update(m).where(m.c.id == _b('b_id'))
    if expected_count:
        query = query.where(m.c.state.in_(
            [_b('b_expected_%d' % i) for i in range(expected_count)]))
    return query


def expected_params(expected):
    return {'b_expected_%d' % i: state for i, state in enumerate(expected)}


TRANSITION_LOSER = (sa.select(MIGRATIONS.c.state, MIGRATIONS.c.owner,
                              MIGRATIONS.c.abort_requested, MIGRATIONS.c.reason)
                    .where(MIGRATIONS.c.id == _b('b_id')))

UPDATE_INSTANCE = sa.update(INSTANCES).where(INSTANCES.c.name == _b('b_name'))
INSERT_INSTANCE = sa.insert(INSTANCES)


def _later(column, param):
    """``column`` moved forward to ``param`` only."""
    return sa.case((column > _b(param), column), else_=_b(param))


HOST_ALIVE = sa.update(HOSTS).where(HOSTS.c.name == _b('b_name')).values(
    last_heartbeat=_b('b_now'), state='up',
    reported_at=_later(HOSTS.c.reported_at, 'b_reported_at'),
    updated_at=sa.case((HOSTS.c.state != 'up', _b('b_now')), else_=HOSTS.c.updated_at))
HOST_FOR_HEARTBEAT = (sa.select(HOSTS.c.facts, HOSTS.c.state, HOSTS.c.updated_at,
                                HOSTS.c.agent).where(HOSTS.c.name == _b('b_name')))
UPDATE_HOST = sa.update(HOSTS).where(HOSTS.c.name == _b('b_name'))
UPDATE_HOST_REPORTED = UPDATE_HOST.values(
    reported_at=_later(HOSTS.c.reported_at, 'b_reported_at'))
