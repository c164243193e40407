"""migrations.start_power_state: the VM's power state when its live migration started.

A conductor that adopts a live migration finishes it on the destination long
after the job began; by then the source's copy is shut off and the hosts'
reports follow it. What the VM must be where it arrives (running, or paused as
an operator left it) is what it was when the job started, so the record keeps
it. NULL: not a live migration, or a record from before this revision.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'


def upgrade():
    op.add_column('migrations', sa.Column('start_power_state', sa.String(16)))
