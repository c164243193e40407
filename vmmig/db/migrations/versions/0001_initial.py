"""Initial schema: hosts, instances, migrations, services.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None


def upgrade():
    op.create_table(
        'hosts',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(255), nullable=False, unique=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('maintenance', sa.Boolean, nullable=False),
        sa.Column('maintenance_reason', sa.String(255)),
        sa.Column('last_heartbeat', sa.Float),
        sa.Column('facts', sa.JSON, nullable=False),
        sa.Column('created_at', sa.Float),
        sa.Column('updated_at', sa.Float),
    )
    op.create_table(
        'instances',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(255), nullable=False, unique=True),
        sa.Column('host', sa.String(255), index=True),
        sa.Column('power_state', sa.String(16)),
        sa.Column('storage_mode', sa.String(32)),
        sa.Column('spec', sa.JSON, nullable=False),
        sa.Column('updated_at', sa.Float),
    )
    op.create_table(
        'migrations',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        sa.Column('instance', sa.String(255), nullable=False, index=True),
        sa.Column('migration_type', sa.String(16), nullable=False),
        sa.Column('storage_mode', sa.String(32), nullable=False),
        sa.Column('source_host', sa.String(255), nullable=False),
        sa.Column('dest_host', sa.String(255)),
        sa.Column('requested_host', sa.String(255)),
        sa.Column('state', sa.String(16), nullable=False, index=True),
        sa.Column('hold_reason', sa.String(255)),
        sa.Column('held_by', sa.String(255)),
        sa.Column('options', sa.JSON, nullable=False),
        sa.Column('owner', sa.String(255)),
        sa.Column('reason', sa.Text),
        sa.Column('vm_location', sa.String(255)),
        sa.Column('abort_requested', sa.Boolean, nullable=False),
        sa.Column('force_complete_requested', sa.Boolean, nullable=False),
        sa.Column('bytes_total', sa.BigInteger),
        sa.Column('bytes_processed', sa.BigInteger),
        sa.Column('bytes_remaining', sa.BigInteger),
        sa.Column('disk_total', sa.BigInteger),
        sa.Column('disk_remaining', sa.BigInteger),
        sa.Column('dirty_rate', sa.BigInteger),
        sa.Column('iteration', sa.Integer),
        sa.Column('downtime_ms', sa.Integer),
        sa.Column('postcopy', sa.Boolean, nullable=False),
        sa.Column('checksum', sa.String(128)),
        sa.Column('created_at', sa.Float, nullable=False),
        sa.Column('started_at', sa.Float),
        sa.Column('finished_at', sa.Float),
        sa.Column('updated_at', sa.Float),
        sa.Column('progress_at', sa.Float),
    )
    op.create_table(
        'services',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(255), nullable=False, unique=True),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('last_seen', sa.Float, nullable=False),
    )
