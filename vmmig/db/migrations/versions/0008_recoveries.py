"""recoveries: what the HA monitor did about each failure of a host.

The fencing and its outcome, the evacuations recorded in priority order and
the reasons of the VMs left where they were.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'


def upgrade():
    op.create_table(
        'recoveries',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('host', sa.String(255), nullable=False, index=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('method', sa.String(32)),
        sa.Column('owner', sa.String(255)),
        sa.Column('reason', sa.Text),
        sa.Column('items', sa.JSON, nullable=False),
        sa.Column('created_at', sa.Double, nullable=False),
        sa.Column('fenced_at', sa.Double),
        sa.Column('updated_at', sa.Double),
        sa.Column('finished_at', sa.Double),
    )
