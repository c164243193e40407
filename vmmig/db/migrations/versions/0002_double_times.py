"""Times in double precision: MariaDB's FLOAT is single precision.

A time since the epoch stored in a 4-byte float is off by up to about two
minutes, enough to keep a silent host "up" or to let an old agent report win.
SQLite's REAL and PostgreSQL's FLOAT are already 8-byte floats.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'

# table -> (column, nullable)
TIME_COLUMNS = {
    'hosts': (('last_heartbeat', True), ('created_at', True), ('updated_at', True)),
    'instances': (('updated_at', True),),
    'migrations': (('created_at', False), ('started_at', True), ('finished_at', True),
                   ('updated_at', True), ('progress_at', True)),
    'services': (('last_seen', False),),
}


def upgrade():
    if op.get_bind().dialect.name != 'mysql':
        return
    for table, columns in TIME_COLUMNS.items():
        for column, nullable in columns:
            op.alter_column(table, column, type_=sa.Double, existing_type=sa.Float,
                            existing_nullable=nullable)
