"""recoveries dropped: the HA monitor's recovery of a host is an action plan.

An ``evacuate`` plan (action_plans, plan_actions) holds what the table held: the
host down and how it was fenced (the plan's reason), each VM by priority with
its evacuation (migrations.action_id) or the reason it stays, and how it ended.

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = '0009'
down_revision = '0008'


def upgrade():
    # Its index goes with it, on every backend.
    op.drop_table('recoveries')
