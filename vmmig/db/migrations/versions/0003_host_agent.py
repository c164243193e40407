"""hosts.agent: the RPC server of the agent process that serves a host.

NULL means the host's own name, as every agent before this revision was
addressed; a process that serves several simulated hosts registers its own.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'


def upgrade():
    op.add_column('hosts', sa.Column('agent', sa.String(255)))
