"""migrations.offered_files: the size and SHA-256 of each file a cold migration offers.

The source agent computes them when it offers the files, and the conductor
keeps them here; the receiving agent checks its copy against these, so a peer
cannot vouch for its own data. NULL: nothing offered, or a record from before
this revision.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'


def upgrade():
    op.add_column('migrations', sa.Column('offered_files', sa.JSON))
