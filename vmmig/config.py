"""Parsing the command line and configuration files of every vmmig program."""

import os
import sys

from oslo_config import cfg
from oslo_db import options as db_options
from oslo_log import log as logging
import oslo_messaging
from oslo_messaging.notify import notifier as messaging_notifier
from oslo_messaging import transport as messaging_transport

from vmmig import conf
from vmmig.conf import check
from vmmig import exception

CONF = conf.CONF
LOG = logging.getLogger(__name__)

_LOGGING_REGISTERED = False


def _default_connection():
    return 'sqlite:///' + os.path.join(os.path.expanduser(CONF.state_path), 'vmmig.sqlite')


def set_defaults():
    global _LOGGING_REGISTERED
    if not _LOGGING_REGISTERED:
        logging.register_options(CONF)
        # transport_url and the notification options are read before any transport exists.
        # oslo.messaging registers these lazily; the same opt objects, so no duplicates.
        CONF.register_opts(messaging_transport._transport_opts)
        CONF.register_opts(messaging_notifier._notifier_opts,
                           group='oslo_messaging_notifications')
        _LOGGING_REGISTERED = True
    # oslo.db's default pool (5 + 50 overflow) lets two conductors exhaust
    # PostgreSQL's 100 connections; 10 + 10 is plenty for worker_threads = 16.
    db_options.set_defaults(CONF, connection=_default_connection(), max_pool_size=10,
                            max_overflow=10)
    oslo_messaging.set_transport_defaults('vmmig')
    # Notifications are part of the product: emitted unless the operator says otherwise.
    CONF.set_default('driver', ['messagingv2'], group='oslo_messaging_notifications')
    logging.set_defaults(default_log_levels=logging.get_default_log_levels() + [
        'stevedore=WARN', 'alembic=WARN', 'oslo_messaging=WARN', 'amqp=WARN', 'kombu=WARN'])


def _parse(argv, default_config_files):
    try:
        CONF(argv, project='vmmig', default_config_files=default_config_files)
    except cfg.ConfigFileParseError as e:
        raise exception.InvalidConfigFile(path=e.config_file, reason=e.msg)
    except cfg.ConfigFilesNotFoundError as e:
        raise exception.InvalidConfigFile(path=', '.join(e.config_files),
                                          reason='not found or not readable')
    except cfg.ConfigDirNotFoundError as e:
        raise exception.InvalidConfigFile(path=e.config_dir, reason='no such directory')
    except UnicodeDecodeError:
        # oslo.config does not say which file; the first that does not decode is it.
        for path in check.files_named(argv, CONF.default_config_files):
            check.read_file(path)
        raise


def parse_args(argv, default_config_files=None, setup_logging=True):
    """Parse the command line and the files, and check every value once.

    Raises Invalid (InvalidOption, InvalidConfigFile) naming what is wrong,
    before anything is written: the state directory is made only after.
    """
    set_defaults()
    _parse(argv, default_config_files)
    # The state path may come from the file just read: recompute the default database.
    db_options.set_defaults(CONF, connection=_default_connection())
    warnings = check.check(CONF)
    try:
        os.makedirs(os.path.expanduser(CONF.state_path), exist_ok=True)
    except OSError as e:
        raise exception.InvalidOption(option='[DEFAULT] state_path', value=CONF.state_path,
                                      reason=e.strerror)
    if setup_logging:
        logging.setup(CONF, 'vmmig')
    for warning in warnings:
        LOG.warning('%s', warning)


def parse_args_or_exit(prog, argv, **kwargs):
    """parse_args for a service: a bad configuration ends it with one line naming it."""
    try:
        parse_args(argv, **kwargs)
    except exception.Invalid as e:
        sys.exit('%s: %s' % (prog, e))


def is_embedded():
    """Embedded unless told otherwise or a transport_url was configured.

    oslo.messaging's own default URL (rabbit://) does not count: a fresh
    install must work with no broker.
    """
    if CONF.embedded is not None:
        return CONF.embedded
    location = CONF.get_location('transport_url')
    return not CONF.transport_url or (location is not None and
                                      location.location == cfg.Locations.opt_default)
