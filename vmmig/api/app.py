"""The WSGI application: routing, versions, the request context, and the middleware
around it (oslo.middleware request_id and, optionally, http_proxy_to_wsgi;
keystonemiddleware auth_token unless [api] auth_strategy is noauth)."""

import logging

from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id as request_id_mw
from oslo_middleware import sizelimit
from oslo_serialization import jsonutils
import routes
import webob
import webob.dec

from vmmig.api import errors
from vmmig.api import handlers
from vmmig.api import versions
from vmmig.conductor import rpcapi
from vmmig import conf
from vmmig import context as vcontext

LOG = logging.getLogger(__name__)
CONF = conf.CONF


def _json(status, data, headers=None):
    resp = webob.Response(status=status, content_type=errors.JSON, charset='utf-8')
    for name, value in headers or ():
        resp.headers.add(name, value)
    resp.text = jsonutils.dumps(data)
    return resp


class API(object):
    """/ (the versions), /v1 and its resources (vmmig.api.handlers.ROUTES)."""

    def __init__(self, conductor_factory=None):
        # Seam for tests that give the conductor client another timeout.
        self.conductor_factory = conductor_factory or (
            lambda ctxt: rpcapi.ConductorAPI(context=ctxt))
        self.mapper = routes.Mapper()
        self.paths = routes.Mapper()  # the same paths, any method: 405 versus 404
        for method, path, handler in handlers.ROUTES:
            self.mapper.connect('/v1' + path, handler=handler,
                                conditions={'method': [method]})
            self.paths.connect('/v1' + path, handler=None)

    @webob.dec.wsgify
    def __call__(self, req):
        request_id = req.environ.get(errors.REQUEST_ID_KEY)
        try:
            return self._dispatch(req)
        except Exception as exc:  # noqa: every failure is answered in the API-WG shape
            status, code, detail = errors.from_exception(exc)
            if status >= 500:
                LOG.exception('%s %s failed (request %s)', req.method, req.path, request_id)
            else:
                LOG.info('%s %s refused with %s: %s', req.method, req.path, status, detail)
            return errors.response(status, code, detail, request_id)
        finally:
            # The thread serves the next request with no one's context.
            vcontext.RequestContext.update_store(None)

    def _dispatch(self, req):
        path = req.path_info.rstrip('/') or '/'
        if path == '/':
            if req.method != 'GET':
                raise _not_allowed(req)
            return _json(200, {'versions': [versions.document(req.application_url)]})
        head = path.split('/')[1]
        if head != 'v1':
            raise errors.ApiError(404, 'vmmig.version-not-found',
                                  'API version %s is not available; this vmmig-api '
                                  'serves v1 (GET / lists the versions)' % head)
        version = versions.requested(req)
        headers = [(versions.HEADER, versions.header_value(version)),
                   ('Vary', versions.HEADER)]
        if path == '/v1':
            if req.method != 'GET':
                raise _not_allowed(req)
            return _json(200, {'version': versions.document(req.application_url)},
                         headers)
        match = self.mapper.match(path, environ={'REQUEST_METHOD': req.method})
        if match is None:
            if self.paths.match(path) is not None:
                raise _not_allowed(req)
            raise errors.ApiError(404, 'vmmig.resource-not-found',
                                  'No resource %s in API v1' % path)
        handler = match.pop('handler')
        ctxt = vcontext.RequestContext.from_environ(req.environ)
        status, body = handler(self.conductor_factory(ctxt), req, match)
        return _json(status, body, headers)


def _not_allowed(req):
    return errors.ApiError(405, 'vmmig.method-not-allowed',
                           '%s is not allowed on %s' % (req.method, req.path))


def build(conductor_factory=None):
    """The application and its middleware, from the outside in: http_proxy_to_wsgi
    ([oslo_middleware] enable_proxy_headers_parsing), request_id, the error shaper,
    the body size limit ([oslo_middleware] max_request_body_size), auth_token (unless
    [api] auth_strategy is noauth), the API."""
    app = API(conductor_factory)
    if CONF.api.auth_strategy == 'keystone':
        from keystonemiddleware import auth_token
        app = auth_token.AuthProtocol(app, {'oslo_config_config': CONF})
    app = sizelimit.RequestBodySizeLimiter(app, CONF)
    app = errors.Faults(app)
    app = request_id_mw.RequestId(app)
    return http_proxy_to_wsgi.HTTPProxyToWSGI(app, CONF)
