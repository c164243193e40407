"""oslo.messaging transports, clients, servers and the notifier.

The embedded mode (no transport_url) uses oslo.messaging's in-process
``fake://`` driver: the same clients and endpoints, no broker.
"""

import logging

import oslo_messaging as messaging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.rpc import server as rpc_server

from vmmig import conf
from vmmig import config
from vmmig import context as vcontext
from vmmig import exception

LOG = logging.getLogger(__name__)
CONF = conf.CONF

ALLOWED_EXMODS = ['vmmig.exception']
EMBEDDED_URL = 'fake://'

_TRANSPORT = None
_NOTIFICATION_TRANSPORT = None


class RequestContextSerializer(messaging.NoOpSerializer):
    """The request context as a dict on the wire, a RequestContext again on arrival.

    Deserializing makes it the current context of the thread that runs the endpoint
    (oslo.context stores it), so oslo.log's lines there carry its request id and user.
    A caller of an older release sends ``{}``: a context with no user and no role,
    which the policy refuses.
    """

    def serialize_context(self, ctxt):
        if isinstance(ctxt, vcontext.RequestContext):
            # to_dict() leaves the names out; records keep the user's name.
            return dict(ctxt.to_dict(), user_name=ctxt.user_name,
                        project_name=ctxt.project_name)
        return dict(ctxt or {})

    def deserialize_context(self, ctxt):
        restored = vcontext.RequestContext.from_dict(dict(ctxt or {}))
        restored.update_store()
        return restored


SERIALIZER = RequestContextSerializer()


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


def get_client(topic, version, server=None, timeout=None, cap_option=None):
    """A client that sends the oldest version of its major (``1.0``) unless a call
    prepares a newer one, up to ``version``: an endpoint one minor version behind
    (a rolling upgrade) still takes every call that has not changed since.

    ``cap_option``: the [upgrade_levels] option that may cap ``version`` lower.
    """
    cap = version
    if cap_option and getattr(CONF.upgrade_levels, cap_option):
        cap = _checked_cap(getattr(CONF.upgrade_levels, cap_option), version, cap_option)
    target = messaging.Target(topic=topic, version=version.split('.')[0] + '.0',
                              server=server)
    return messaging.get_rpc_client(get_transport(), target, version_cap=cap,
                                    timeout=timeout or CONF.conductor.rpc_timeout,
                                    serializer=SERIALIZER)


def require_version(client, version, api, why):
    """Refuse, naming the cap, a call that needs ``version`` of the ``api`` RPC API
    ('conductor' or 'agent', as its [upgrade_levels] option) when it is capped lower."""
    if not client.can_send_version(version):
        raise exception.Invalid(reason='%s needs %s RPC API %s; [upgrade_levels] %s caps '
                                       'it lower' % (why, api, version, api))


def _checked_cap(cap, version, option):
    major, minor = (int(x) for x in cap.split('.'))
    known_major, known_minor = (int(x) for x in version.split('.'))
    if major != known_major or minor > known_minor:
        raise exception.InvalidOption(
            option='[upgrade_levels] %s' % option, value=cap,
            reason='this release speaks %d.0 to %s' % (known_major, version))
    return cap


class RoutedDispatcher(rpc_dispatcher.RPCDispatcher):
    """Dispatches only what came through the topic's exchanges.

    RabbitMQ checks who may publish to an exchange and, on a topic exchange, with
    which routing key; but every service that answers calls may publish to the
    default exchange (the answers go there), and the default exchange delivers to
    any queue named by the routing key, an RPC server's among them. A message the
    broker delivered from the default exchange (or any exchange other than the
    control exchange and the topic's fanout exchange) is refused here; the broker
    says which exchange delivered it, the sender cannot. Drivers that do not say
    (the in-process ``fake://``) are not checked.
    """

    def __init__(self, endpoints, serializer, exchanges):
        super(RoutedDispatcher, self).__init__(endpoints, serializer)
        self.exchanges = frozenset(exchanges)

    def dispatch(self, incoming):
        raw = getattr(incoming.message, '_raw_message', None)
        info = getattr(raw, 'delivery_info', None)
        if info is not None and info.get('exchange') not in self.exchanges:
            LOG.warning('Refused %s: delivered by exchange %r with routing key %r, not '
                        'through %s', incoming.message.get('method'), info.get('exchange'),
                        info.get('routing_key'), ', '.join(sorted(self.exchanges)))
            raise exception.RouteRefused(method=incoming.message.get('method'),
                                         exchange=info.get('exchange') or '(default)',
                                         allowed=', '.join(sorted(self.exchanges)))
        return super(RoutedDispatcher, self).dispatch(incoming)


def get_server(topic, server, endpoints):
    target = messaging.Target(topic=topic, server=server)
    # The transport's exchange is [DEFAULT] control_exchange (oslo.messaging's option).
    exchanges = (CONF.control_exchange, '%s_fanout' % topic)
    return rpc_server.RPCServer(get_transport(), target,
                                RoutedDispatcher(endpoints, SERIALIZER, exchanges))


def get_notifier(publisher_id):
    init()
    # Topics from [oslo_messaging_notifications] topics (default: notifications).
    return messaging.Notifier(_NOTIFICATION_TRANSPORT, publisher_id=publisher_id)
