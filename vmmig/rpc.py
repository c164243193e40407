"""oslo.messaging transports, clients, servers and the notifier.

The embedded mode (no transport_url) uses oslo.messaging's in-process
``fake://`` driver: the same clients and endpoints, no broker.
"""

import oslo_messaging as messaging

from vmmig import conf
from vmmig import config

CONF = conf.CONF

ALLOWED_EXMODS = ['vmmig.exception']
EMBEDDED_URL = 'fake://'

_TRANSPORT = None
_NOTIFICATION_TRANSPORT = None


def init():
    global _TRANSPORT, _NOTIFICATION_TRANSPORT
    if _TRANSPORT is not None:
        return
    url = EMBEDDED_URL if config.is_embedded() else CONF.transport_url
    _TRANSPORT = messaging.get_rpc_transport(CONF, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
    _NOTIFICATION_TRANSPORT = messaging.get_notification_transport(CONF, url=url)


def cleanup():
    global _TRANSPORT, _NOTIFICATION_TRANSPORT
    for transport in (_TRANSPORT, _NOTIFICATION_TRANSPORT):
        if transport is not None:
            transport.cleanup()
    _TRANSPORT = _NOTIFICATION_TRANSPORT = None


def get_transport():
    init()
    return _TRANSPORT


def get_client(topic, version, server=None, timeout=None):
    """A client that sends the oldest version of its major (``1.0``) unless a call
    prepares a newer one, up to ``version``: an endpoint one minor version behind
    (a rolling upgrade) still takes every call that has not changed since."""
    target = messaging.Target(topic=topic, version=version.split('.')[0] + '.0',
                              server=server)
    return messaging.get_rpc_client(get_transport(), target, version_cap=version,
                                    timeout=timeout or CONF.conductor.rpc_timeout)


def get_server(topic, server, endpoints):
    target = messaging.Target(topic=topic, server=server)
    return messaging.get_rpc_server(get_transport(), target, endpoints)


def get_notifier(publisher_id):
    init()
    # Topics from [oslo_messaging_notifications] topics (default: notifications).
    return messaging.Notifier(_NOTIFICATION_TRANSPORT, publisher_id=publisher_id)
