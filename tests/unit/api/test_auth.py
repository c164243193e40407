"""keystonemiddleware auth_token in front of the API, Keystone unreachable: a request
without a token is 401, one with a token that cannot be checked is 503, both in the
API-WG shape with a sentence that names the problem."""

import json
import socket

from keystoneauth1 import loading
import pytest
import webob

from vmmig.api import app as api_app
from vmmig import conf
from vmmig import config

CONF = conf.CONF


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def app(tmp_path):
    keystone = 'http://127.0.0.1:%d/identity' % _closed_port()
    path = tmp_path / 'vmmig.conf'
    path.write_text('[keystone_authtoken]\nwww_authenticate_uri = %s\nauth_url = %s\n'
                    'auth_type = password\nusername = vmmig\npassword = secret\n'
                    'project_name = service\nuser_domain_id = default\n'
                    'project_domain_id = default\nhttp_connect_timeout = 2\n'
                    'http_request_max_retries = 0\n' % (keystone, keystone))
    # As a service reads its file; no oslo.config fixture: its overrides would outlive
    # the test in the options' recorded locations (the CLI's embedded test reads them).
    config.set_defaults()
    CONF(['--config-file', str(path)], project='vmmig', default_config_files=[])
    yield api_app.build()
    # auth_token registered the password plugin's options, auth_url required among
    # them: the tests that parse CONF after this one must not need them.
    CONF.reset()
    CONF.unregister_opts(loading.get_auth_plugin_conf_options('password'),
                         group='keystone_authtoken')


def _call(app, **headers):
    resp = webob.Request.blank('/v1/hosts', headers=headers).get_response(app)
    [error] = json.loads(resp.body)['errors']
    assert error['status'] == resp.status_int
    assert error['request_id'] == resp.headers['x-openstack-request-id']
    return resp, error


def test_no_token_is_401_saying_to_give_one(app):
    resp, error = _call(app)
    assert resp.status_int == 401
    assert error['code'] == 'vmmig.unauthorized'
    assert 'X-Auth-Token' in error['detail']
    assert resp.headers['WWW-Authenticate'].startswith('Keystone uri=')


def test_a_token_that_keystone_cannot_check_is_503_naming_keystone(app):
    resp, error = _call(app, **{'X-Auth-Token': 'gAAAAAnotarealtoken'})
    assert resp.status_int == 503
    assert error['code'] == 'vmmig.identity-unavailable'
    assert 'Keystone' in error['detail']


def test_the_headers_a_client_forges_are_not_believed(app):
    # auth_token removes X-Roles and friends before anything reads them.
    resp, error = _call(app, **{'X-Roles': 'admin', 'X-User-Name': 'mallory'})
    assert resp.status_int == 401
