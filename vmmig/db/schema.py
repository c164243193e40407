"""Schema upgrades with alembic (``vmmig-manage db sync``)."""

import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration

from vmmig.db import api

_SCRIPTS = os.path.join(os.path.dirname(__file__), 'migrations')


def _config(connection):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', _SCRIPTS)
    cfg.attributes['connection'] = connection
    return cfg


def sync(revision='head'):
    with api.get_engine().begin() as connection:
        command.upgrade(_config(connection), revision)


def version():
    with api.get_engine().connect() as connection:
        return alembic_migration.MigrationContext.configure(connection).get_current_revision()
