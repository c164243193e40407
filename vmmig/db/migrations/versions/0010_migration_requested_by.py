"""migrations.requested_by: who asked for the migration.

The audit trail kept only who held a migration (held_by). Now every record says
who asked for it: the user of the request's context (a Keystone token's user over
the API), or, for an action of a plan, the plan's requester ("ha-monitor" for a
recovery). NULL: a record from before this revision, or a request that named
nobody.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'


def upgrade():
    op.add_column('migrations', sa.Column('requested_by', sa.String(255)))
