"""vmmig-api: the REST API on a simple threaded WSGI server (tests, development).

In production a WSGI server serves vmmig.api.wsgi:application instead.
"""

import socketserver
import sys
import threading
from wsgiref import simple_server

from oslo_log import log as logging

from vmmig.api import app
from vmmig import conf
from vmmig import config
from vmmig import rpc

CONF = conf.CONF
LOG = logging.getLogger(__name__)


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.info('%s %s', self.address_string(), fmt % args)


def make_server(application, host, port):
    """A threaded WSGI server on (host, port); port 0 picks a free one."""
    return simple_server.make_server(host, port, application, server_class=_Server,
                                     handler_class=_Handler)


def serve_in_thread(application, host='127.0.0.1', port=0):
    """Serve in a daemon thread (tests); returns the server (``server_port``,
    ``shutdown()``)."""
    server = make_server(application, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv=None):
    config.parse_args_or_exit('vmmig-api', sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig-api needs a transport_url: it calls a vmmig-conductor over the '
                 'message bus')
    server = make_server(app.build(), CONF.api.host, CONF.api.port)
    LOG.info('vmmig-api serving on http://%s:%s/ (auth_strategy %s)', CONF.api.host,
             server.server_port, CONF.api.auth_strategy)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        rpc.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
