"""Parsing the command line and configuration files of every vmmig program."""

import os

from oslo_config import cfg
from oslo_db import options as db_options
from oslo_log import log as logging
import oslo_messaging
from oslo_messaging.notify import notifier as messaging_notifier
from oslo_messaging import transport as messaging_transport

from vmmig import conf

CONF = conf.CONF

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


def parse_args(argv, default_config_files=None, setup_logging=True):
    set_defaults()
    CONF(argv, project='vmmig', default_config_files=default_config_files)
    # The state path may come from the file just read: recompute the default database.
    db_options.set_defaults(CONF, connection=_default_connection())
    os.makedirs(os.path.expanduser(CONF.state_path), exist_ok=True)
    if setup_logging:
        logging.setup(CONF, 'vmmig')


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
