"""The room a migration takes on its destination, and when a host last reported.

Until the destination's agent reports the VM, its facts do not show what the
VM uses there; the scheduler counts the room of the migrations on their way
instead (db.api.inbound), so concurrent requests cannot fill one host twice.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'


def upgrade():
    op.add_column('hosts', sa.Column('reported_at', sa.Double))
    for column in ('dest_vcpus', 'dest_memory_mb', 'dest_disk_gb'):
        op.add_column('migrations', sa.Column(column, sa.Integer))
    op.create_index('ix_migrations_state_finished_at', 'migrations', ['state', 'finished_at'])
