"""SQL tables: hosts, instances, migrations and the services that own them.

Times are seconds since the epoch in double-precision floats: comparable the
same way on SQLite, PostgreSQL and MariaDB, with no time-zone surprises.
(MariaDB's FLOAT is single precision: a time in it is off by minutes.)
"""

import sqlalchemy as sa
from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    def as_dict(self):
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class Host(Base):
    __tablename__ = 'hosts'

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(255), nullable=False, unique=True)
    state = sa.Column(sa.String(16), nullable=False, default='up')
    maintenance = sa.Column(sa.Boolean, nullable=False, default=False)
    maintenance_reason = sa.Column(sa.String(255))
    last_heartbeat = sa.Column(sa.Double)
    facts = sa.Column(sa.JSON, nullable=False, default=dict)
    created_at = sa.Column(sa.Double)
    updated_at = sa.Column(sa.Double)
    # The RPC server of the agent process that serves the host; NULL: its own name.
    agent = sa.Column(sa.String(255))
    # When the agent took its latest report (a light one too: it says nothing changed
    # since the full one): what arrived before this time shows in the facts.
    reported_at = sa.Column(sa.Double)


class Instance(Base):
    __tablename__ = 'instances'

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(255), nullable=False, unique=True)
    host = sa.Column(sa.String(255), index=True)
    power_state = sa.Column(sa.String(16))
    storage_mode = sa.Column(sa.String(32))
    spec = sa.Column(sa.JSON, nullable=False, default=dict)
    updated_at = sa.Column(sa.Double)


class Migration(Base):
    __tablename__ = 'migrations'
    # The recently completed migrations whose room on their destination still counts.
    __table_args__ = (sa.Index('ix_migrations_state_finished_at', 'state', 'finished_at'),)

    id = sa.Column(sa.Integer, primary_key=True)
    uuid = sa.Column(sa.String(36), nullable=False, unique=True)
    instance = sa.Column(sa.String(255), nullable=False, index=True)
    migration_type = sa.Column(sa.String(16), nullable=False)
    storage_mode = sa.Column(sa.String(32), nullable=False)
    source_host = sa.Column(sa.String(255), nullable=False)
    dest_host = sa.Column(sa.String(255))
    requested_host = sa.Column(sa.String(255))
    # Who asked: the request context's user (a token's, over the API), or the plan's
    # requester for a plan's action ("ha-monitor" for a recovery).
    requested_by = sa.Column(sa.String(255))
    state = sa.Column(sa.String(16), nullable=False, index=True)
    hold_reason = sa.Column(sa.String(255))
    held_by = sa.Column(sa.String(255))
    options = sa.Column(sa.JSON, nullable=False, default=dict)
    owner = sa.Column(sa.String(255))
    reason = sa.Column(sa.Text)
    vm_location = sa.Column(sa.String(255))
    abort_requested = sa.Column(sa.Boolean, nullable=False, default=False)
    force_complete_requested = sa.Column(sa.Boolean, nullable=False, default=False)
    bytes_total = sa.Column(sa.BigInteger)
    bytes_processed = sa.Column(sa.BigInteger)
    bytes_remaining = sa.Column(sa.BigInteger)
    disk_total = sa.Column(sa.BigInteger)
    disk_remaining = sa.Column(sa.BigInteger)
    dirty_rate = sa.Column(sa.BigInteger)
    iteration = sa.Column(sa.Integer)
    downtime_ms = sa.Column(sa.Integer)
    postcopy = sa.Column(sa.Boolean, nullable=False, default=False)
    checksum = sa.Column(sa.String(128))
    # The room the VM takes on the destination, counted there until its agent reports
    # the VM (see db.api.inbound). NULL: a record from before revision 0004.
    dest_vcpus = sa.Column(sa.Integer)
    dest_memory_mb = sa.Column(sa.Integer)
    dest_disk_gb = sa.Column(sa.Integer)
    # The VM's power state when its live migration started: what it must be on the
    # destination, whoever finishes the job (see migration.live). NULL: another type,
    # or a record from before revision 0005.
    start_power_state = sa.Column(sa.String(16))
    # The files a cold migration's source agent offered, each {id, kind, size, sha256}
    # as it computed them: what the receiving agent checks its copy against, not what
    # the sending peer says in its stream. NULL: nothing offered yet, or before 0006.
    offered_files = sa.Column(sa.JSON)
    created_at = sa.Column(sa.Double, nullable=False)
    started_at = sa.Column(sa.Double)
    finished_at = sa.Column(sa.Double)
    updated_at = sa.Column(sa.Double)
    progress_at = sa.Column(sa.Double)
    # The action of a plan this migration carries out (vmmig/plans); unique: an action
    # is recorded once, whichever conductor records it, however often it restarts.
    action_id = sa.Column(sa.Integer, unique=True)


class Service(Base):
    """A running conductor, so that another can adopt its work when it dies."""

    __tablename__ = 'services'

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(255), nullable=False, unique=True)
    kind = sa.Column(sa.String(32), nullable=False)
    last_seen = sa.Column(sa.Double, nullable=False)


class ActionPlan(Base):
    """The migrations that carry out one host operation (a drain), recorded before any
    of them moves. States: vmmig/plans/states.py."""

    __tablename__ = 'action_plans'

    id = sa.Column(sa.Integer, primary_key=True)
    uuid = sa.Column(sa.String(36), nullable=False, unique=True)
    strategy = sa.Column(sa.String(32), nullable=False)
    host = sa.Column(sa.String(255), nullable=False, index=True)
    state = sa.Column(sa.String(16), nullable=False, index=True)
    # Why the operation was asked for (the maintenance reason, the health signal).
    reason = sa.Column(sa.Text)
    # How it ended, in words (the VMs that stay and why).
    result = sa.Column(sa.Text)
    options = sa.Column(sa.JSON, nullable=False, default=dict)
    requested_by = sa.Column(sa.String(255))
    abort_requested = sa.Column(sa.Boolean, nullable=False, default=False)
    # Modelled seconds the whole plan takes within the limits (vmmig/plans/cost.py).
    estimate_s = sa.Column(sa.Double)
    created_at = sa.Column(sa.Double, nullable=False)
    started_at = sa.Column(sa.Double)
    finished_at = sa.Column(sa.Double)
    updated_at = sa.Column(sa.Double)


class PlanAction(Base):
    """One VM of a plan: what happens to it, where, in which order, or why it stays."""

    __tablename__ = 'plan_actions'
    __table_args__ = (sa.UniqueConstraint('plan_id', 'position',
                                          name='uq_plan_actions_plan_id_position'),)

    id = sa.Column(sa.Integer, primary_key=True)
    plan_id = sa.Column(sa.Integer, sa.ForeignKey('action_plans.id'), nullable=False,
                        index=True)
    position = sa.Column(sa.Integer, nullable=False)
    instance = sa.Column(sa.String(255), nullable=False)
    power_state = sa.Column(sa.String(16))
    # live, cold, or NULL for a VM that stays.
    migration_type = sa.Column(sa.String(16))
    dest_host = sa.Column(sa.String(255))
    options = sa.Column(sa.JSON, nullable=False, default=dict)
    state = sa.Column(sa.String(16), nullable=False)
    reason = sa.Column(sa.Text)
    migration_id = sa.Column(sa.Integer)
    # The action this one replaces (a cold move after a failed live one).
    fallback_of = sa.Column(sa.Integer)
    estimate_s = sa.Column(sa.Double)
    updated_at = sa.Column(sa.Double)
