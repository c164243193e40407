"""vmmig-manage: administration that needs no running service (the database schema)."""

import sys

from oslo_config import cfg

from vmmig import conf
from vmmig import config
from vmmig.db import schema

CONF = conf.CONF


def _db_sync():
    schema.sync(CONF.command.revision)
    print('database schema at revision %s' % schema.version())


def _db_version():
    print(schema.version() or 'none')


def _add_parsers(subparsers):
    db = subparsers.add_parser('db', help='database schema')
    db_sub = db.add_subparsers(dest='db_action')
    sync = db_sub.add_parser('sync', help='upgrade the schema to the newest revision')
    sync.add_argument('revision', nargs='?', default='head')
    sync.set_defaults(func=_db_sync)
    version = db_sub.add_parser('version', help='print the schema revision')
    version.set_defaults(func=_db_version)


def main(argv=None):
    command = cfg.SubCommandOpt('command', title='Commands', handler=_add_parsers)
    CONF.register_cli_opt(command)
    config.parse_args_or_exit('vmmig-manage', sys.argv[1:] if argv is None else argv,
                              setup_logging=False)
    if not hasattr(CONF.command, 'func'):
        sys.exit('usage: vmmig-manage db sync|version')
    CONF.command.func()
