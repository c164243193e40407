"""Action plans: the migrations of one host operation, recorded before anything moves.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'


def upgrade():
    op.create_table(
        'action_plans',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False, unique=True),
        sa.Column('strategy', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False, index=True),
        sa.Column('state', sa.String(16), nullable=False, index=True),
        sa.Column('reason', sa.Text),
        sa.Column('result', sa.Text),
        sa.Column('options', sa.JSON, nullable=False),
        sa.Column('requested_by', sa.String(255)),
        sa.Column('abort_requested', sa.Boolean, nullable=False),
        sa.Column('estimate_s', sa.Double),
        sa.Column('created_at', sa.Double, nullable=False),
        sa.Column('started_at', sa.Double),
        sa.Column('finished_at', sa.Double),
        sa.Column('updated_at', sa.Double),
    )
    op.create_table(
        'plan_actions',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('plan_id', sa.Integer, sa.ForeignKey('action_plans.id'), nullable=False,
                  index=True),
        sa.Column('position', sa.Integer, nullable=False),
        sa.Column('instance', sa.String(255), nullable=False),
        sa.Column('power_state', sa.String(16)),
        sa.Column('migration_type', sa.String(16)),
        sa.Column('dest_host', sa.String(255)),
        sa.Column('options', sa.JSON, nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('reason', sa.Text),
        sa.Column('migration_id', sa.Integer),
        sa.Column('fallback_of', sa.Integer),
        sa.Column('estimate_s', sa.Double),
        sa.Column('updated_at', sa.Double),
        sa.UniqueConstraint('plan_id', 'position', name='uq_plan_actions_plan_id_position'),
    )
    with op.batch_alter_table('migrations') as batch:
        batch.add_column(sa.Column('action_id', sa.Integer))
        batch.create_unique_constraint('uq_migrations_action_id', ['action_id'])
