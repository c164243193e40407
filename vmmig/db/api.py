"""The only code that reads and writes the database.

Every change of a migration's state is a guarded update: ``UPDATE ... WHERE
state IN (expected)``. When two conductors race for one migration exactly one
update matches a row; the other gets StateConflict and leaves it alone.
"""

import contextlib
import threading
import time
import uuid as uuidlib

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines
import sqlalchemy as sa
from sqlalchemy import orm

from vmmig import conf
from vmmig.db import models
from vmmig.db import queries
from vmmig.db import states
from vmmig import exception

CONF = conf.CONF

_LOCK = threading.Lock()
_SQLITE_LOCK = threading.RLock()
_ENGINE = None
_SESSIONMAKER = None

# Also on a duplicate key: two writers that both found a row missing (two reports
# of a new host's agent) both insert it; the second's retry finds it and updates it.
retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=5, retry_on_deadlock=True, retry_interval=0.1, inc_retry_interval=True,
    exception_checker=lambda e: isinstance(e, db_exc.DBDuplicateEntry))


def get_engine():
    global _ENGINE, _SESSIONMAKER
    with _LOCK:
        if _ENGINE is None:
            url = CONF.database.connection
            if not url:
                raise exception.InvalidOption(option='[database] connection', value=url,
                                              reason='no database is configured')
            if url.startswith('sqlite'):
                _ENGINE = _sqlite_engine(url)
            else:
                _ENGINE = engines.create_engine(url, max_pool_size=CONF.database.max_pool_size,
                                                max_overflow=CONF.database.max_overflow,
                                                pool_timeout=CONF.database.pool_timeout)
            _SESSIONMAKER = orm.sessionmaker(bind=_ENGINE, expire_on_commit=False)
        return _ENGINE


def _sqlite_engine(url):
    """Conductor threads and the CLI share one SQLite file.

    A deferred transaction that reads and then writes fails at once with
    "database is locked" when another connection wrote in between; BEGIN
    IMMEDIATE takes the write lock up front and busy_timeout makes the others
    wait for it. (oslo.db's SQLite set-up emits a plain BEGIN, hence our own.)
    """
    engine = sa.create_engine(url, connect_args={'check_same_thread': False, 'timeout': 30})
    sa.event.listen(engine, 'connect', _sqlite_pragmas)
    sa.event.listen(engine, 'begin', _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection, _record):
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=30000')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.close()


def _sqlite_begin(connection):
    connection.exec_driver_sql('BEGIN IMMEDIATE')


def dispose():
    """Forget the engine (tests switch databases; forked children must not share it)."""
    global _ENGINE, _SESSIONMAKER
    with _LOCK:
        if _ENGINE is not None:
            _ENGINE.dispose()
        _ENGINE = _SESSIONMAKER = None


def _one_writer_at_a_time(engine):
    """SQLite lets one writer in at a time and makes the others poll with growing
    sleeps (busy_timeout): under load some threads starve for seconds. Threads of
    one process (the embedded services) queue on a lock of ours instead."""
    return _SQLITE_LOCK if engine.dialect.name == 'sqlite' else contextlib.nullcontext()


@contextlib.contextmanager
def _session():
    engine = get_engine()
    with _one_writer_at_a_time(engine), _SESSIONMAKER.begin() as session:
        yield session


@contextlib.contextmanager
def _connection():
    """A Core connection in a transaction: for the statements of the hot paths, which
    need no ORM (its unit of work costs more than the statements themselves)."""
    engine = get_engine()
    with _one_writer_at_a_time(engine), engine.begin() as conn:
        yield conn


def _now():
    return time.time()


# host_heartbeat(agent=KEEP): leave the recorded agent as it is.
KEEP = object()


_HOSTS = models.Host.__table__
_INSTANCES = models.Instance.__table__
_MIGRATIONS = models.Migration.__table__
_SERVICES = models.Service.__table__


def _one(conn, query, params=None):
    row = conn.execute(query, params).mappings().first()
    return dict(row) if row is not None else None


# Hosts ------------------------------------------------------------------

@retry_on_deadlock
def host_heartbeat(name, facts, now=None, agent=KEEP, reported_at=None):
    """Record a full report of the host: up, with these facts.

    ``agent``: the RPC server of the agent process that serves it (None: the host's
    own name), given at registration; KEEP leaves the recorded one alone.
    ``reported_at``: when the agent looked (default: now).
    """
    now = now or _now()
    reported_at = reported_at or now
    with _connection() as conn:
        host = conn.execute(queries.HOST_FOR_HEARTBEAT, {'b_name': name}).first()
        if host is None:
            conn.execute(sa.insert(_HOSTS).values(
                name=name, created_at=now, maintenance=False, facts=facts, state='up',
                last_heartbeat=now, updated_at=now, reported_at=reported_at,
                agent=None if agent is KEEP else agent))
            return
        # reported_at moves forward only: a heartbeat overtaken by a newer one on the
        # way must not make the scheduler count again what the newer one showed arrived.
        values = dict(state='up', last_heartbeat=now, b_name=name,
                      b_reported_at=reported_at)
        # updated_at is the time of the last change, which the scheduler's cache of
        # hosts follows: a heartbeat that changes nothing leaves it alone.
        if host.facts != facts or host.state != 'up' or host.updated_at is None:
            values.update(facts=facts, updated_at=now)
        if agent is not KEEP and agent != host.agent:
            values.update(agent=agent, updated_at=now)
        conn.execute(queries.UPDATE_HOST_REPORTED, values)


def host_agent(name):
    """The RPC server to address for host ``name`` (its own name unless recorded)."""
    with _connection() as conn:
        row = conn.execute(sa.select(_HOSTS.c.agent).where(_HOSTS.c.name == name)).first()
    if row is None:
        raise exception.HostNotFound(host=name)
    return row.agent or name


@retry_on_deadlock
def host_alive(name, now=None, reported_at=None):
    """A liveness-only heartbeat: False when no such host is recorded.

    It says the host is as its last full report showed it at ``reported_at``.
    """
    now = now or _now()
    with _connection() as conn:
        result = conn.execute(queries.HOST_ALIVE, {
            'b_name': name, 'b_now': now, 'b_reported_at': reported_at or now})
        return result.rowcount == 1


def host_get(name):
    with _connection() as conn:
        host = _one(conn, queries.HOST_BY_NAME, {'b_name': name})
    if host is None:
        raise exception.HostNotFound(host=name)
    return host


def host_list(names=None):
    """Every host, or those of ``names``, by name."""
    query = sa.select(_HOSTS).order_by(_HOSTS.c.name)
    if names is not None:
        query = query.where(_HOSTS.c.name.in_(list(names)))
    with _connection() as conn:
        return [dict(h) for h in conn.execute(query).mappings()]


def host_versions():
    """{host name: updated_at}: what changed since a cache of hosts was filled."""
    with _connection() as conn:
        return _host_versions(conn)


def _host_versions(conn):
    return dict(conn.execute(queries.HOST_VERSIONS).all())


@retry_on_deadlock
def hosts_mark_down(timeout, now=None):
    """Mark down every up host silent for longer than ``timeout``; return their names."""
    now = now or _now()
    with _session() as session:
        stale = session.scalars(sa.select(models.Host).where(
            models.Host.state == 'up', models.Host.last_heartbeat < now - timeout)).all()
        for host in stale:
            host.state = 'down'
            host.updated_at = now
        return [h.name for h in stale]


@retry_on_deadlock
def host_down(name, facts, now=None):
    """Record a host that another system says is down (the nova backend: its
    nova-compute service), with these facts; its last heartbeat stays the last time it
    was seen up. A host seen first down is recorded so."""
    now = now or _now()
    with _session() as session:
        host = session.scalar(sa.select(models.Host).filter_by(name=name))
        if host is None:
            session.add(models.Host(name=name, state='down', maintenance=False, facts=facts,
                                    created_at=now, updated_at=now, reported_at=now))
            return
        if host.state != 'down' or host.facts != facts:
            host.state = 'down'
            host.facts = facts
            host.updated_at = now
        host.reported_at = now


@retry_on_deadlock
def instance_seen(name, host, spec, now=None):
    """Record ``name`` on ``host`` as ``spec`` says, now: what the backend saw right after
    it moved (or failed to move) it, which a report taken before must not undo."""
    with _connection() as conn:
        _instance_moved(conn, name, host, spec, now or _now())


@retry_on_deadlock
def instance_relocated(name, host, spec, reported_at):
    """Record ``name`` on ``host`` as a look at ``reported_at`` saw it, unless it changed
    since (a migration that ended after the look). One update: the VM is never missing
    from the records on its way from its old host's list to its new one's."""
    with _connection() as conn:
        conn.execute(sa.update(_INSTANCES).where(
            _INSTANCES.c.name == name,
            sa.or_(_INSTANCES.c.updated_at.is_(None),
                   _INSTANCES.c.updated_at <= reported_at))
            .values(**_instance_values(host, spec, reported_at)))


@retry_on_deadlock
def host_set_maintenance(name, maintenance, reason=None):
    with _session() as session:
        host = session.scalar(sa.select(models.Host).filter_by(name=name))
        if host is None:
            raise exception.HostNotFound(host=name)
        host.maintenance = maintenance
        host.maintenance_reason = reason if maintenance else None
        host.updated_at = _now()
        return host.as_dict()


# Instances --------------------------------------------------------------

@retry_on_deadlock
def instances_report(host, instances, reported_at):
    """Record what an agent saw on its host at ``reported_at``.

    A report older than the last change of an instance (a migration that
    finished after the agent looked) must not move it back; nor does a stopped
    copy take an instance from a host where it runs (what a migration whose
    clean-up of the source failed leaves behind, until removed). A VM of this host
    the report no longer lists was deleted there: it is forgotten, unless it
    changed after the agent looked or a migration of it is unfinished (then the
    migration says where it is). Else an evacuation would rebuild a deleted VM.
    """
    names = [spec['name'] for spec in instances]
    with _connection() as conn:
        rows = {row.name: row for row in conn.execute(
            sa.select(_INSTANCES.c.name, _INSTANCES.c.host, _INSTANCES.c.spec,
                      _INSTANCES.c.updated_at).where(_INSTANCES.c.name.in_(names)))
                } if instances else {}
        for spec in instances:
            row = rows.get(spec['name'])
            if row is None:
                conn.execute(sa.insert(_INSTANCES).values(
                    name=spec['name'], **_instance_values(host, spec, reported_at)))
            elif row.updated_at and row.updated_at > reported_at:
                continue
            elif row.host == host and row.spec == spec:
                continue  # nothing new: updated_at stays the time of the last change
            elif row.host != host and _live(row.spec) and not _live(spec):
                continue
            else:
                # Guarded again in the UPDATE itself: a migration that completed while
                # this report was read (its row locked, the read above older) must not
                # be moved back by it.
                conn.execute(sa.update(_INSTANCES).where(
                    _INSTANCES.c.name == spec['name'],
                    sa.or_(_INSTANCES.c.updated_at.is_(None),
                           _INSTANCES.c.updated_at <= reported_at))
                    .values(**_instance_values(host, spec, reported_at)))
        unfinished = sa.select(_MIGRATIONS.c.instance).where(_MIGRATIONS.c.state.in_(
            (states.QUEUED, states.HELD) + tuple(states.ACTIVE)))
        conn.execute(sa.delete(_INSTANCES).where(
            _INSTANCES.c.host == host,
            _INSTANCES.c.name.not_in(names),
            sa.or_(_INSTANCES.c.updated_at.is_(None),
                   _INSTANCES.c.updated_at <= reported_at),
            _INSTANCES.c.name.not_in(unfinished)))


def _live(spec):
    return (spec or {}).get('power_state') in ('running', 'paused')


def _instance_values(host, spec, now):
    return dict(host=host, power_state=spec.get('power_state'),
                storage_mode=spec.get('storage_mode'), spec=spec, updated_at=now)


def _instance_moved(conn, name, host, spec, now):
    """The conductor's word once a migration has put the instance on ``host``."""
    values = _instance_values(host, spec, now)
    if not conn.execute(queries.UPDATE_INSTANCE, dict(values, b_name=name)).rowcount:
        conn.execute(queries.INSERT_INSTANCE, dict(values, name=name))


def instance_get(name):
    with _connection() as conn:
        row = _one(conn, queries.INSTANCE_BY_NAME, {'b_name': name})
    if row is None:
        raise exception.InstanceNotFound(instance=name)
    return row


def precheck_rows(instance_name, requested_host, unfinished, host_versions=False,
                  exclude_migration=None):
    """What a precheck reads, in one transaction: the instance, its host, the requested
    host (None if none), the instance's migrations in the ``unfinished`` states,
    with ``host_versions`` what host_versions() returns (else None), and what
    inbound() returns (leaving out ``exclude_migration``)."""
    with _connection() as conn:
        row = _one(conn, queries.INSTANCE_BY_NAME, {'b_name': instance_name})
        if row is None:
            raise exception.InstanceNotFound(instance=instance_name)
        names = [row['host'], requested_host] if requested_host else [row['host']]
        hosts = {h['name']: dict(h) for h in conn.execute(
            queries.HOSTS_BY_NAMES, {'b_names': names}).mappings()}
        for name in names:
            if name not in hosts:
                raise exception.HostNotFound(host=name)
        others = conn.execute(queries.MIGRATIONS_OF_INSTANCE, {
            'b_instance': instance_name, 'b_states': list(unfinished)}).mappings()
        others = [dict(m) for m in others]
        versions = _host_versions(conn) if host_versions else None
        inbound_ = _inbound(conn, requested_host, exclude_migration)
        return row, hosts[row['host']], hosts.get(requested_host), others, versions, inbound_


def instance_list(host=None):
    with _session() as session:
        query = sa.select(models.Instance).order_by(models.Instance.name)
        if host:
            query = query.filter_by(host=host)
        return [i.as_dict() for i in session.scalars(query)]


# Migrations -------------------------------------------------------------

TAKES_ROOM = queries.TAKES_ROOM


def inbound(host=None):
    """{host: {'vcpus', 'memory_mb', 'disk_gb', 'migrations'}}: the room that migrations
    on their way to each host take there and its agent's facts do not show yet."""
    with _connection() as conn:
        return _inbound(conn, host)


def _inbound(conn, host=None, exclude_migration=None):
    """Queued and running migrations to a host count, and completed ones until the
    host reports after their end (then its facts show the VM). A completed one
    counts only while the instance record puts its VM there (one that moved on takes
    no room), and not when the host's last report was taken while the VM was there
    before (its facts show it already). One that ended longer than [conductor]
    heartbeat_timeout ago does not: a host silent that long is down.
    """
    query = queries.inbound(host is not None, exclude_migration is not None)
    params = {'b_since': _now() - CONF.conductor.heartbeat_timeout}
    if host is not None:
        params['b_host'] = host
    if exclude_migration is not None:
        params['b_exclude'] = exclude_migration
    return {name: {'vcpus': int(vcpus or 0), 'memory_mb': int(memory or 0),
                   'disk_gb': int(disk or 0), 'migrations': count}
            for name, vcpus, memory, disk, count in conn.execute(query, params)}


def _migration_where(ident):
    if isinstance(ident, str) and not ident.isdigit():
        return _MIGRATIONS.c.uuid == ident
    return _MIGRATIONS.c.id == int(ident)


def _migration_row(conn, ident):
    if isinstance(ident, int):
        return _one(conn, queries.MIGRATION_BY_ID, {'b_id': ident})
    return _one(conn, sa.select(_MIGRATIONS).where(_migration_where(ident)))


def _lock_dispatch(conn):
    """Take the row lock that orders every claim and every new record."""
    lock = conn.execute(queries.DISPATCH_LOCK, {'b_name': _DISPATCH_LOCK}).scalar()
    if lock is None:
        conn.execute(sa.insert(_SERVICES).values(name=_DISPATCH_LOCK, kind='lock',
                                                 last_seen=_now()))


def _active_counts(conn):
    """Active migrations out of and into each host, and in total."""
    rows = conn.execute(sa.select(_MIGRATIONS.c.source_host, _MIGRATIONS.c.dest_host)
                        .where(_MIGRATIONS.c.state.in_(tuple(states.ACTIVE)))).all()
    return _counts(rows)


def _counts(rows):
    outbound, inbound = {}, {}
    for source, dest in rows:
        outbound[source] = outbound.get(source, 0) + 1
        if dest:
            inbound[dest] = inbound.get(dest, 0) + 1
    return outbound, inbound, len(rows)


@retry_on_deadlock
def migration_create(values, unfinished=(), claim=None, room_check=None):
    """Record a new migration; refused while the instance has one in ``unfinished``.

    ``room_check(host row, inbound() of the host or None)``: a reason why the
    destination has no room for the VM any more, or None; a reason refuses the
    record with NoRoom. The checks and the insert happen under the dispatch lock,
    so two requests for one VM at the same moment cannot both be recorded, nor two
    requests fill the last room of a host. With ``claim`` (a
    ``Limits``), the migration is created already claimed by ``claim.owner``
    (preparing) when nothing is queued before it and the limits allow; else it
    is queued. The ``state`` of the record returned says which.
    """
    values = dict(values)
    values.setdefault('uuid', str(uuidlib.uuid4()))
    values.setdefault('state', states.QUEUED)
    values.setdefault('options', {})
    values.setdefault('abort_requested', False)
    values.setdefault('force_complete_requested', False)
    values.setdefault('postcopy', False)
    with _connection() as conn:
        _lock_dispatch(conn)
        if values.get('action_id') is not None:
            _refuse_recorded_action(conn, values['action_id'])
        now = _now()  # under the lock: created_at orders the queue
        around = conn.execute(queries.migrations_around(bool(unfinished)), {
            'b_instance': values['instance'], 'b_unfinished': list(unfinished)}
            if unfinished else {}).all()
        other = next((m for m in around if m.instance == values['instance']
                      and m.state in unfinished), None)
        if other is not None:
            raise exception.PrecheckFailed(instance=values['instance'], reasons=[
                'it already has migration %s, which is %s' % (other.id, other.state)])
        if room_check is not None and values.get('dest_host'):
            dest = values['dest_host']
            host = _one(conn, queries.HOST_BY_NAME, {'b_name': dest})
            if host is None:
                raise exception.HostNotFound(host=dest)
            reason = room_check(host, _inbound(conn, dest).get(dest))
            if reason:
                raise exception.NoRoom(instance=values['instance'], reasons=[reason])
        values['created_at'] = values['updated_at'] = now
        if claim is not None and values['state'] == states.QUEUED:
            queued = any(m.state == states.QUEUED for m in around)
            outbound, inbound, total = _counts([(m.source_host, m.dest_host) for m in around
                                                if m.state in states.ACTIVE])
            if not queued and claim.allows(outbound, inbound, total,
                                           values['source_host'], values['dest_host']):
                values.update(state=states.PREPARING, owner=claim.owner, started_at=now)
        migration_id = conn.execute(queries.INSERT_MIGRATION, values).inserted_primary_key[0]
        return dict(values, id=migration_id, **{
            c.name: None for c in _MIGRATIONS.c if c.name not in values and c.name != 'id'})


def _refuse_recorded_action(conn, action_id):
    """A plan's action is recorded once (vmmig/plans): a conductor that restarted
    between recording its migration and noting it in the plan finds it here."""
    row = conn.execute(sa.select(_MIGRATIONS.c.id).where(
        _MIGRATIONS.c.action_id == action_id)).first()
    if row is not None:
        raise exception.ActionAlreadyRecorded(action=action_id, migration=row.id)


def migration_get(ident):
    with _connection() as conn:
        row = _migration_row(conn, ident)
        if row is None:
            raise exception.MigrationNotFound(migration=ident)
        return row


def migration_list(state=None, instance=None, host=None, owner=None, limit=None):
    with _connection() as conn:
        query = sa.select(_MIGRATIONS).order_by(_MIGRATIONS.c.id)
        if state:
            states_ = [state] if isinstance(state, str) else list(state)
            query = query.where(_MIGRATIONS.c.state.in_(states_))
        if instance:
            query = query.where(_MIGRATIONS.c.instance == instance)
        if host:
            query = query.where(sa.or_(_MIGRATIONS.c.source_host == host,
                                       _MIGRATIONS.c.dest_host == host))
        if owner:
            query = query.where(_MIGRATIONS.c.owner == owner)
        if limit:
            query = query.limit(limit)
        return [dict(m) for m in conn.execute(query).mappings()]


def _transition(conn, migration_id, expected, target, owner, unless_abort, values):
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for source in expected:
        if not states.allowed(source, target):
            raise ValueError('transition %s -> %s is not in the table' % (source, target))
    # Stamped inside the transaction, which holds its lock (SQLite's BEGIN IMMEDIATE
    # may wait), so that the times of two transitions are in the order they happened.
    now = _now()
    values['state'] = target
    values['updated_at'] = now
    if target in states.TERMINAL:
        values.setdefault('finished_at', now)
    # One round trip instead of two where UPDATE ... RETURNING exists (PostgreSQL,
    # SQLite; not MariaDB).
    returning = conn.dialect.update_returning
    query = queries.transition(len(expected), owner is not None, bool(unless_abort),
                               returning)
    params = dict(values, b_id=migration_id, **queries.expected_params(expected))
    if owner is not None:
        params['b_owner'] = owner
    if returning:
        row = conn.execute(query, params).mappings().first()
        if row is not None:
            return dict(row)
    elif conn.execute(query, params).rowcount == 1:
        return _migration_row(conn, migration_id)
    row = conn.execute(queries.TRANSITION_LOSER, {'b_id': migration_id}).first()
    if row is None:
        raise exception.MigrationNotFound(migration=migration_id)
    mine = owner is None or row.owner == owner
    if unless_abort and mine and row.state in expected and row.abort_requested:
        raise exception.MigrationCancelled(migration=migration_id,
                                           reason=row.reason or 'aborted on request')
    actual = row.state if mine else '%s (owned by %s)' % (row.state, row.owner)
    raise exception.StateConflict(migration=migration_id, expected='/'.join(expected),
                                  actual=actual, target=target)


@retry_on_deadlock
def migration_transition(migration_id, expected, target, owner=None, unless_abort=False,
                         **values):
    """Move a migration from one of ``expected`` to ``target``, or raise StateConflict.

    With ``owner``, only while that conductor still owns the migration. With
    ``unless_abort``, not once an operator asked to abort it: MigrationCancelled
    then, with the operator's reason.
    """
    with _connection() as conn:
        return _transition(conn, migration_id, expected, target, owner, unless_abort,
                           values)


@retry_on_deadlock
def migration_complete(migration_id, expected, owner, instance, host, spec, **values):
    """completed, and the instance recorded on ``host``: both or neither."""
    with _connection() as conn:
        record = _transition(conn, migration_id, expected, states.COMPLETED, owner,
                             False, values)
        _instance_moved(conn, instance, host, spec, record['updated_at'])
        return record


@retry_on_deadlock
def migration_update(migration_id, expected=None, **values):
    """Change fields other than the state; with ``expected``, only in those states."""
    values['updated_at'] = _now()
    expected = tuple(expected or ())
    params = dict(values, b_id=int(migration_id), **queries.expected_params(expected))
    with _connection() as conn:
        return conn.execute(queries.migration_update(len(expected)), params).rowcount == 1


# Services ---------------------------------------------------------------

@retry_on_deadlock
def service_heartbeat(name, kind, now=None):
    now = now or _now()
    with _session() as session:
        row = session.scalar(sa.select(models.Service).filter_by(name=name))
        if row is None:
            session.add(models.Service(name=name, kind=kind, last_seen=now))
        else:
            row.last_seen = now


@retry_on_deadlock
def service_delete(name):
    """Forget a service that stopped: nothing of its can be adopted from it any more,
    and a name used once (an embedded CLI process) leaves no row behind."""
    with _session() as session:
        session.execute(sa.delete(models.Service).filter_by(name=name))


def service_list(kind=None):
    with _session() as session:
        query = sa.select(models.Service)
        if kind:
            query = query.filter_by(kind=kind)
        return [s.as_dict() for s in session.scalars(query)]


def dump():
    """Every row of every table, for tests that prove nothing changed."""
    with _session() as session:
        return {table.name: sorted(map(tuple, session.execute(sa.select(table)).all()), key=repr)
                for table in models.Base.metadata.sorted_tables}


# Dispatch -------------------------------------------------------------------

_DISPATCH_LOCK = 'dispatch-lock'


def dispatch_lock_create():
    """Make the row that migration_claim and migration_create lock, once, before any
    conductor claims.

    Created lazily by the first claim instead, two conductors starting on an empty
    database would both find it missing and claim without a lock between them.
    """
    try:
        with _session() as session:
            if session.scalar(sa.select(models.Service)
                              .filter_by(name=_DISPATCH_LOCK)) is None:
                session.add(models.Service(name=_DISPATCH_LOCK, kind='lock',
                                           last_seen=_now()))
    except (db_exc.DBDuplicateEntry, sa.exc.IntegrityError):
        pass  # another conductor made it first


class Limits(object):
    """How many migrations may run at once, and who claims them."""

    def __init__(self, owner, max_total, max_outbound, max_inbound):
        self.owner = owner
        self.max_total = max_total
        self.max_outbound = max_outbound
        self.max_inbound = max_inbound

    def allows(self, outbound, inbound, total, source, dest):
        return (total < self.max_total
                and outbound.get(source, 0) < self.max_outbound
                and inbound.get(dest, 0) < self.max_inbound)


@retry_on_deadlock
def migration_claim(limits, count):
    """Claim up to ``count`` queued migrations, oldest first, that the limits allow:
    queued -> preparing. Returns (claimed records, how many stay queued).

    Counting and claiming happen under one row lock, so two conductors cannot
    both take the last free slot of a host.
    """
    with _connection() as conn:
        _lock_dispatch(conn)
        now = _now()  # under the lock: started_at orders the claims
        outbound, inbound, total = _active_counts(conn)
        # Only the columns the limits need: the queue may be long, and is read at
        # every claim.
        queued = conn.execute(sa.select(_MIGRATIONS.c.id, _MIGRATIONS.c.source_host,
                                        _MIGRATIONS.c.dest_host)
                              .where(_MIGRATIONS.c.state == states.QUEUED)
                              .order_by(_MIGRATIONS.c.id)).all()
        taken = []
        for migration_id, source, dest in queued:
            if len(taken) >= count or total >= limits.max_total:
                break
            if limits.allows(outbound, inbound, total, source, dest):
                taken.append(migration_id)
                outbound[source] = outbound.get(source, 0) + 1
                inbound[dest] = inbound.get(dest, 0) + 1
                total += 1
        if not taken:
            return [], len(queued)
        conn.execute(sa.update(_MIGRATIONS).where(_MIGRATIONS.c.id.in_(taken)).values(
            state=states.PREPARING, owner=limits.owner, started_at=now, updated_at=now))
        claimed = conn.execute(sa.select(_MIGRATIONS).where(_MIGRATIONS.c.id.in_(taken))
                               .order_by(_MIGRATIONS.c.id)).mappings()
        return [dict(m) for m in claimed], len(queued) - len(taken)


@retry_on_deadlock
def migration_adopt(migration_id, state, old_owner, new_owner):
    """Take over a migration of a dead (or restarted) conductor; True if this call won."""
    with _connection() as conn:
        query = sa.update(_MIGRATIONS).where(_MIGRATIONS.c.id == migration_id,
                                             _MIGRATIONS.c.state == state)
        query = query.where(_MIGRATIONS.c.owner == old_owner) if old_owner is not None \
            else query.where(_MIGRATIONS.c.owner.is_(None))
        return conn.execute(query.values(owner=new_owner,
                                         updated_at=_now())).rowcount == 1
