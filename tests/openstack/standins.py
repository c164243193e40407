"""Small stand-ins for Glance and Neutron, which real Nova calls and this machine lacks.

Each serves only what Nova asks of it when it boots, moves and evacuates servers that
have no network ports (booted with ``networks='none'``): Glance shows one image, Neutron
answers every listing with nothing. They are test tooling, not OpenStack services; any
request they do not know is answered 404 and recorded in ``unknown``, so a test can see
what Nova wanted. Nova itself is real (tests/openstack/nova.py).
"""

import json
import re
import threading
from wsgiref import simple_server
import socketserver

IMAGE_ID = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
IMAGE = {
    'id': IMAGE_ID, 'name': 'vmmig-test-image', 'status': 'active',
    'disk_format': 'raw', 'container_format': 'bare', 'size': 1024,
    'virtual_size': 1024, 'min_disk': 0, 'min_ram': 0, 'visibility': 'public',
    'protected': False, 'os_hidden': False, 'checksum': None, 'owner': None,
    'tags': [], 'created_at': '2026-01-01T00:00:00Z',
    'updated_at': '2026-01-01T00:00:00Z', 'file': '/v2/images/%s/file' % IMAGE_ID,
    'schema': '/v2/schemas/image', 'self': '/v2/images/%s' % IMAGE_ID,
}
# glanceclient builds its image model from this schema, and Nova tells the image's own
# attributes (listed here) from its custom properties (any other name) by it.
IMAGE_SCHEMA = {'name': 'image', 'properties': {name: {} for name in IMAGE},
                'additionalProperties': {'type': 'string'}, 'links': []}


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class StandIn(object):
    """A tiny WSGI app on a free port of 127.0.0.1, served from a thread."""

    name = None

    def __init__(self):
        self.requests = []
        self.unknown = []
        self._httpd = simple_server.make_server(
            '127.0.0.1', 0, self._app, server_class=_Server, handler_class=_Quiet)
        self.url = 'http://127.0.0.1:%d' % self._httpd.server_port
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name='standin-%s' % self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def _app(self, environ, start_response):
        method = environ['REQUEST_METHOD']
        path = environ.get('PATH_INFO', '/')
        self.requests.append((method, path))
        status, body = self.answer(method, path, environ.get('QUERY_STRING', ''))
        if status == 404:
            self.unknown.append((method, path))
        data = json.dumps(body).encode() if body is not None else b''
        headers = [('Content-Type', 'application/json'),
                   ('Content-Length', str(len(data)))]
        start_response({200: '200 OK', 204: '204 No Content',
                        404: '404 Not Found'}[status], headers)
        return [data]

    def answer(self, method, path, query):
        raise NotImplementedError


class Glance(StandIn):
    """Shows one public raw image; the fake virt drivers never download it."""

    name = 'glance'
    image_id = IMAGE_ID

    def answer(self, method, path, query):
        path = path.rstrip('/')
        if method != 'GET':
            return 404, {'error': 'the Glance stand-in only reads'}
        if path in ('', '/versions'):
            return 200, {'versions': [{'id': 'v2.16', 'status': 'CURRENT',
                                       'links': [{'rel': 'self',
                                                  'href': self.url + '/v2/'}]}]}
        if path == '/v2/schemas/image':
            return 200, IMAGE_SCHEMA
        if path == '/v2/images':
            return 200, {'images': [IMAGE], 'schema': '/v2/schemas/images'}
        if path == '/v2/images/' + IMAGE_ID:
            return 200, IMAGE
        return 404, {'error': 'no such image or call: %s' % path}


class Neutron(StandIn):
    """A network service with no networks, ports or extensions to offer."""

    name = 'neutron'
    # Every collection Nova lists, answered empty.
    _LIST = re.compile(r'^/v2\.0/([a-z_-]+?)(\.json)?$')

    def answer(self, method, path, query):
        path = path.rstrip('/')
        if method == 'GET' and path in ('', '/v2.0'):
            return 200, {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                                       'links': [{'rel': 'self',
                                                  'href': self.url + '/v2.0/'}]}]}
        match = self._LIST.match(path)
        if method == 'GET' and match:
            return 200, {match.group(1).replace('-', '_'): []}
        return 404, {'NeutronError': {'type': 'NotFound', 'detail': '',
                                      'message': 'the Neutron stand-in has no %s'
                                      % path}}
