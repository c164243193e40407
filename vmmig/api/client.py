"""A client of vmmig-api with the methods of the conductor's RPC client
(vmmig.conductor.rpcapi.ConductorAPI) and the same answers, over a keystoneauth1
session: the vmmig command uses it when Keystone credentials or an endpoint are
configured, and prints the same output either way.

A refusal raises the vmmig exception of its kind whose message is the API's
``detail``: the sentence the conductor wrote, as the CLI prints it over RPC.
"""

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc

from vmmig.api import versions
from vmmig import exception

API_VERSION = '1.0'


class ApiUnavailable(exception.VmmigException):
    msg_fmt = 'vmmig-api cannot be reached: %(reason)s'
    code = 503


class IdentityError(exception.VmmigException):
    """Keystone could not be asked, or refused the credentials."""

    msg_fmt = 'Keystone: %(reason)s'
    code = 401


_KINDS = {400: exception.Invalid, 403: exception.PolicyNotAuthorized,
          404: exception.NotFound, 409: exception.InvalidState, 503: ApiUnavailable}


def _error(resp):
    """The exception of an answer in the API-WG shape (or of any other error answer)."""
    try:
        first = resp.json()['errors'][0]
        detail, code = first['detail'], first.get('code')
    except (ValueError, KeyError, IndexError, TypeError):
        detail, code = '%s %s answered %s %s' % (
            resp.request.method, resp.url, resp.status_code, resp.reason), None
    if resp.status_code == 401:
        return IdentityError(reason='vmmig-api refused the token: %s' % detail)
    kind = _KINDS.get(resp.status_code, exception.VmmigException)
    error = kind(message=detail)
    error.status, error.api_code = resp.status_code, code
    return error


class ApiClient(object):
    """``session``: a keystoneauth1 Session; ``endpoint``: vmmig-api's root URL, else the
    catalog's ``service_type`` entry."""

    def __init__(self, session, endpoint=None, service_type='vm-migration',
                 interface=None, region_name=None, headers=None):
        self.adapter = adapter.Adapter(
            session, service_type=service_type, endpoint_override=endpoint,
            interface=interface, region_name=region_name, raise_exc=False,
            additional_headers=dict(headers or {}, **{
                versions.HEADER: '%s %s' % (versions.SERVICE, API_VERSION)}))
        self.service_type = service_type
        self._checked = False

    # The wire ---------------------------------------------------------------------

    def _endpoint(self):
        """Authenticate (once) and find vmmig-api: Keystone's failures are named as such."""
        try:
            url = self.adapter.get_endpoint()
        except ks_exc.EndpointNotFound:
            raise IdentityError(reason='the catalog has no %s endpoint (register '
                                       'vmmig-api, or give --os-endpoint)'
                                       % self.service_type)
        except ks_exc.Unauthorized as e:
            raise IdentityError(reason='the credentials were refused (%s)'
                                % _first_line(e))
        except ks_exc.ConnectionError as e:
            raise IdentityError(reason='cannot be reached at %s (%s)' % (
                self.adapter.session.auth.auth_url if getattr(
                    self.adapter.session.auth, 'auth_url', None) else 'its auth URL',
                _first_line(e)))
        except ks_exc.ClientException as e:
            raise IdentityError(reason=_first_line(e))
        if not url:
            raise IdentityError(reason='no endpoint for %s' % self.service_type)
        return url.rstrip('/')

    def _send(self, method, url, **kwargs):
        try:
            return self.adapter.request(url, method, **kwargs)
        except ks_exc.ConnectionError as e:
            raise ApiUnavailable(reason='%s (%s)' % (url, _first_line(e)))
        except ks_exc.Unauthorized as e:
            raise IdentityError(reason='the credentials were refused (%s)'
                                % _first_line(e))

    def _check_version(self, root):
        """vmmig-api at ``root`` serves v1 with this client's microversion, once."""
        if self._checked:
            return
        resp = self._send('GET', root + '/')
        try:
            served = {v['id']: v for v in resp.json()['versions']}
        except (ValueError, KeyError, TypeError):
            raise ApiUnavailable(reason='%s/ is not a vmmig-api (it answered %s %s)'
                                 % (root, resp.status_code, resp.reason))
        v1 = served.get('v1')
        if v1 is None or not (_tuple(v1['min_version']) <= _tuple(API_VERSION)
                              <= _tuple(v1['version'])):
            offered = ', '.join('%s (%s to %s)' % (k, v.get('min_version'), v.get('version'))
                                for k, v in sorted(served.items()))
            raise ApiUnavailable(reason='%s serves API version(s) %s, not v1 %s'
                                 % (root, offered or 'none', API_VERSION))
        self._checked = True

    def _request(self, method, path, key, json=None, params=None):
        root = self._endpoint()
        self._check_version(root)
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        resp = self._send(method, root + '/v1' + path, json=json, params=params or None)
        if resp.status_code >= 400:
            raise _error(resp)
        return resp.json()[key]

    # The methods of ConductorAPI --------------------------------------------------
    # requested_by is taken and left out: the API records the token's user.

    def migrate_server(self, instance, migration_type, host=None, options=None,
                       hold_reason=None, requested_by=None):
        body = {'instance': instance, 'migration_type': migration_type}
        for name, value in (('host', host), ('options', options),
                            ('hold_reason', hold_reason)):
            if value is not None:
                body[name] = value
        return self._request('POST', '/migrations', 'migration', json=body)

    def evacuate_host(self, host, target_host=None, options=None, requested_by=None):
        body = {k: v for k, v in (('target_host', target_host), ('options', options))
                if v is not None}
        return self._request('POST', '/hosts/%s/evacuate' % host, 'migrations', json=body)

    def migration_list(self, state=None, instance=None, host=None):
        return self._request('GET', '/migrations', 'migrations', params={
            'state': state, 'instance': instance, 'host': host})

    def migration_get(self, migration):
        return self._request('GET', '/migrations/%s' % migration, 'migration')

    def migration_progress_get(self, migration):
        return self._request('GET', '/migrations/%s/progress' % migration, 'progress')

    def _verb(self, migration, verb, body=None):
        return self._request('POST', '/migrations/%s/%s' % (migration, verb), 'migration',
                             json=body or {})

    def migration_abort(self, migration, requested_by=None):
        return self._verb(migration, 'abort')

    def migration_hold(self, migration, reason, requested_by=None):
        return self._verb(migration, 'hold', {'reason': reason})

    def migration_resume(self, migration, requested_by=None):
        return self._verb(migration, 'resume')

    def migration_force_complete(self, migration, requested_by=None):
        return self._verb(migration, 'force-complete')

    def host_list(self):
        return self._request('GET', '/hosts', 'hosts')

    def host_eligible(self, instance, migration_type):
        return self._request('GET', '/servers/%s/eligible-hosts' % instance, 'hosts',
                             params={'migration_type': migration_type})

    def instance_list(self, host=None):
        return self._request('GET', '/servers', 'servers', params={'host': host})

    def host_maintenance_set(self, host, reason, options=None, dry_run=False,
                             requested_by=None):
        return self._request('PUT', '/hosts/%s/maintenance' % host, 'plan', json={
            'reason': reason, 'options': options or {}, 'dry_run': dry_run})

    def host_maintenance_unset(self, host, requested_by=None):
        return self._request('DELETE', '/hosts/%s/maintenance' % host, 'host')

    def host_health(self, host, status, reason=None):
        body = {'status': status}
        if reason is not None:
            body['reason'] = reason
        return self._request('POST', '/hosts/%s/health' % host, 'health', json=body)

    def plan_list(self, state=None, host=None, strategy=None):
        return self._request('GET', '/plans', 'plans', params={
            'state': state, 'host': host, 'strategy': strategy})

    def plan_get(self, plan):
        return self._request('GET', '/plans/%s' % plan, 'plan')

    def plan_execute(self, plan, dry_run=False, requested_by=None):
        return self._request('POST', '/plans/%s/execute' % plan, 'plan',
                             json={'dry_run': dry_run})

    def plan_abort(self, plan, dry_run=False, requested_by=None):
        return self._request('POST', '/plans/%s/abort' % plan, 'plan',
                             json={'dry_run': dry_run})


def _tuple(version):
    return tuple(int(x) for x in str(version).split('.'))


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
