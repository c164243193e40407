"""Errors in the OpenStack API working group's shape, one status per kind of failure.

``{"errors": [{"status", "code", "title", "detail", "request_id"}]}``: ``code`` is
``vmmig.`` and the kind (``vmmig.policy-not-authorized``), ``detail`` the sentence
the CLI prints over RPC too.
"""

import re

from oslo_serialization import jsonutils
import oslo_messaging as messaging
import webob
import webob.exc

from vmmig import exception

REQUEST_ID_KEY = 'openstack.request_id'
JSON = 'application/json'


class ApiError(Exception):
    """A failure at the API itself (bad body, unknown version, no such resource)."""

    def __init__(self, status, code, detail, title=None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or webob.exc.status_map[status].title


def _kebab(name):
    return re.sub(r'(?<!^)(?=[A-Z])', '-', name).lower()


def from_exception(exc):
    """(status, code, detail) of an exception a handler let through."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.detail
    if isinstance(exc, exception.VmmigException):
        # A remote exception's str() carries the conductor's traceback; .message not.
        detail = getattr(exc, 'message', None) or str(exc)
        name = type(exc).__name__.replace('_Remote', '')
        status = getattr(exc, 'code', 500) or 500
        return status, 'vmmig.%s' % _kebab(name), detail.strip().splitlines()[0]
    if isinstance(exc, messaging.MessagingTimeout):
        return 503, 'vmmig.conductor-unavailable', (
            'The conductor did not answer in time; is vmmig-conductor running?')
    if isinstance(exc, (messaging.MessageDeliveryFailure, messaging.MessagingException)):
        return 503, 'vmmig.conductor-unavailable', (
            'The message bus cannot reach the conductor: %s'
            % (str(exc).strip().splitlines() or [type(exc).__name__])[0])
    if isinstance(exc, messaging.RemoteError):
        return 500, 'vmmig.conductor-error', exc.value or exc.exc_type
    return 500, 'vmmig.internal-error', 'vmmig-api failed: %s' % (
        str(exc) or type(exc).__name__)


def body(status, code, detail, request_id=None, title=None):
    return {'errors': [{
        'status': status, 'code': code,
        'title': title or webob.exc.status_map[status].title,
        'detail': detail, 'request_id': request_id}]}


def response(status, code, detail, request_id=None, title=None, headers=None):
    resp = webob.Response(status=status, content_type=JSON, charset='utf-8')
    for name, value in headers or ():
        resp.headers.add(name, value)
    resp.text = jsonutils.dumps(body(status, code, detail, request_id, title))
    return resp


class Faults(object):
    """Outermost but request_id: whatever answer an inner layer gives with an error
    status and no API-WG body (keystonemiddleware's 401 and 503, webob's own) is
    rewritten into one, keeping its status and headers (WWW-Authenticate)."""

    DETAILS = {
        401: 'Authentication required: give a valid Keystone token in X-Auth-Token '
             '(none was given, or it is expired, revoked or not genuine).',
        503: 'The identity service (Keystone) cannot be reached to check the token; '
             'try again later.',
    }

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        try:
            resp = req.get_response(self.app)
        except Exception as exc:  # noqa: any failure becomes an answer in the shape
            status, code, detail = from_exception(exc)
            resp = response(status, code, detail, environ.get(REQUEST_ID_KEY))
            return resp(environ, start_response)
        if resp.status_int >= 400 and not _ours(resp):
            status = resp.status_int
            detail = self.DETAILS.get(status) or _their_detail(resp) or resp.status
            if status == 503 and 'keystone' not in detail.lower():
                detail = self.DETAILS[503] + ' (%s)' % detail
            headers = [(k, v) for k, v in resp.headerlist
                       if k.lower() in ('www-authenticate', 'retry-after')]
            code = {401: 'vmmig.unauthorized',
                    503: 'vmmig.identity-unavailable'}.get(status, 'vmmig.%s' % _kebab(
                        re.sub(r'\W', '', resp.status.split(' ', 1)[-1].title())))
            resp = response(status, code, detail, environ.get(REQUEST_ID_KEY),
                            headers=headers)
        return resp(environ, start_response)


def _ours(resp):
    if resp.content_type != JSON:
        return False
    try:
        return 'errors' in jsonutils.loads(resp.body)
    except ValueError:
        return False


def _their_detail(resp):
    try:
        data = jsonutils.loads(resp.body)
    except ValueError:
        text = resp.text.strip() if resp.charset else ''
        return text.splitlines()[-1] if text else None
    error = data.get('error') if isinstance(data, dict) else None
    if isinstance(error, dict):
        return error.get('message')
    return None
