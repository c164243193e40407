"""vmmig-api's application in front of a real in-process conductor (noauth: the
headers say who asks): versions, the boundary check, error shapes, policy refusals
with nothing recorded, request ids, and an unreachable conductor."""

import json
import logging
import uuid

from oslo_context import context

import pytest
import webob

from tests import fixtures as vfix
from tests.unit.semantics.helpers import stable_dump
from vmmig.api import app as api_app
from vmmig.conductor import rpcapi
from vmmig import conf
from vmmig.db import api as db

CONF = conf.CONF
ADMIN = {'X-User-Name': 'alice', 'X-User-Id': 'alice', 'X-Roles': 'admin',
         'X-Project-Id': 'p-ops', 'X-Project-Name': 'ops'}
READER = dict(ADMIN, **{'X-User-Name': 'rita', 'X-User-Id': 'rita', 'X-Roles': 'reader'})
MEMBER = dict(ADMIN, **{'X-User-Name': 'mike', 'X-User-Id': 'mike', 'X-Roles': 'member'})


@pytest.fixture
def cloud():
    fixture = vfix.EmbeddedFixture(**{'api.auth_strategy': 'noauth'})
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def app(cloud):
    return api_app.build()


def call(app, method, path, body=None, headers=ADMIN, raw=None, **extra):
    req = webob.Request.blank(path, method=method, headers=dict(headers or {}, **extra))
    if raw is not None:
        req.body = raw
        req.content_type = 'application/json'
    elif body is not None:
        req.json_body = body
    resp = req.get_response(app)
    return resp, (json.loads(resp.body) if resp.body else None)


def error_of(resp, data):
    [error] = data['errors']
    assert set(error) == {'status', 'code', 'title', 'detail', 'request_id'}
    assert error['status'] == resp.status_int
    assert error['request_id'] == resp.headers['x-openstack-request-id']
    return error


# Versions ----------------------------------------------------------------------------

def test_the_root_lists_v1_with_its_microversions(app):
    resp, data = call(app, 'GET', '/')
    assert resp.status_int == 200
    [v1] = data['versions']
    assert (v1['id'], v1['min_version'], v1['version']) == ('v1', '1.0', '1.0')
    assert v1['links'][0]['href'] == 'http://localhost/v1/'


def test_an_unknown_version_is_404_naming_it(app):
    resp, data = call(app, 'GET', '/v2/migrations')
    assert resp.status_int == 404
    error = error_of(resp, data)
    assert error['code'] == 'vmmig.version-not-found'
    assert 'v2' in error['detail'] and 'v1' in error['detail']


def test_a_microversion_out_of_range_is_refused_naming_the_range(app):
    resp, data = call(app, 'GET', '/v1/hosts', **{'OpenStack-API-Version': 'vmmig 1.7'})
    assert resp.status_int == 406
    assert '1.7' in error_of(resp, data)['detail']
    resp, _ = call(app, 'GET', '/v1/hosts', **{'OpenStack-API-Version': 'vmmig latest'})
    assert resp.status_int == 200
    assert resp.headers['OpenStack-API-Version'] == 'vmmig 1.0'


def test_unknown_resource_and_wrong_method(app):
    resp, data = call(app, 'GET', '/v1/flavors')
    assert resp.status_int == 404 and 'flavors' in error_of(resp, data)['detail']
    resp, data = call(app, 'DELETE', '/v1/migrations')
    assert resp.status_int == 405 and error_of(resp, data)['code'] == \
        'vmmig.method-not-allowed'


# The boundary ---------------------------------------------------------------------

def test_malformed_json_is_400_and_records_nothing(app):
    before = stable_dump()
    resp, data = call(app, 'POST', '/v1/migrations', raw=b'{"instance": "web-1",')
    assert resp.status_int == 400
    error = error_of(resp, data)
    assert error['code'] == 'vmmig.malformed-body'
    assert 'not valid JSON' in error['detail']
    assert stable_dump() == before


@pytest.mark.parametrize('body,field,words', [
    ({'instance': 'web-1', 'migration_type': 'live', 'hots': 'sim-b'}, 'hots',
     'accepted: hold_reason, host, instance'),
    ({'instance': 'web-1', 'migration_type': 'live', 'host': '../etc'}, 'host',
     'host name'),
    ({'instance': 'web-1'}, 'migration_type', 'is required'),
    ({'instance': 'web-1', 'migration_type': 'live', 'options': []}, 'options',
     'must be a dict'),
    ({'instance': 'web-1', 'migration_type': 'cold', 'hold_reason': ''}, 'hold_reason',
     ''),
])
def test_a_bad_field_is_400_naming_it_and_records_nothing(app, body, field, words):
    before = stable_dump()
    resp, data = call(app, 'POST', '/v1/migrations', body=body)
    assert resp.status_int == 400, data
    error = error_of(resp, data)
    assert error['code'] == 'vmmig.invalid-field'
    assert error['detail'].startswith('body field %s ' % field), error['detail']
    assert words in error['detail']
    assert stable_dump() == before


def test_a_bad_query_parameter_or_path_segment_is_400_naming_it(app):
    resp, data = call(app, 'GET', '/v1/migrations?state=sleeping')
    assert resp.status_int == 400
    assert error_of(resp, data)['detail'].startswith('query parameter field state ')
    resp, data = call(app, 'GET', '/v1/migrations?hots=a')
    assert resp.status_int == 400 and 'hots' in error_of(resp, data)['detail']
    resp, data = call(app, 'GET', '/v1/migrations/0')
    assert resp.status_int == 400
    assert error_of(resp, data)['detail'].startswith('path segment field migration ')


# The conductor's answers, shaped ---------------------------------------------------------

def test_an_admin_migrates_and_the_record_keeps_the_token_user(app):
    resp, data = call(app, 'POST', '/v1/migrations',
                      body={'instance': 'legacy-1', 'migration_type': 'cold',
                            'hold_reason': 'window at 22:00'})
    assert resp.status_int == 202, data
    record = data['migration']
    assert (record['instance'], record['state'], record['held_by']) == (
        'legacy-1', 'held', 'alice')
    resp, data = call(app, 'GET', '/v1/migrations?instance=legacy-1', headers=READER)
    assert [m['id'] for m in data['migrations']] == [record['id']]
    resp, data = call(app, 'GET', '/v1/migrations/%s' % record['uuid'], headers=READER)
    assert data['migration']['id'] == record['id']
    resp, data = call(app, 'GET', '/v1/migrations/%s/progress' % record['id'])
    assert data['progress']['state'] == 'held'
    # A held migration cannot be force-completed: a state conflict.
    resp, data = call(app, 'POST', '/v1/migrations/%s/force-complete' % record['id'])
    assert resp.status_int == 409
    assert 'held' in error_of(resp, data)['detail']
    resp, data = call(app, 'POST', '/v1/migrations/%s/abort' % record['id'])
    assert resp.status_int == 200
    assert db.migration_get(record['id'])['state'] == 'cancelled'


@pytest.mark.parametrize('headers,rule', [
    (READER, 'vmmig:migration:create'),
    (MEMBER, 'vmmig:migration:create'),
    ({'X-User-Name': 'eve', 'X-Roles': 'admin', 'X-Project-Id': 'p-other',
      'X-Project-Name': 'other'}, 'vmmig:migration:create'),
])
def test_a_refusal_is_403_naming_the_rule_and_records_nothing(cloud, app, headers, rule):
    cloud.conf.conf.config(operator_projects=['ops'], group='api')
    before = stable_dump()
    resp, data = call(app, 'POST', '/v1/migrations', headers=headers,
                      body={'instance': 'web-1', 'migration_type': 'live'})
    assert resp.status_int == 403, data
    error = error_of(resp, data)
    assert error['code'] == 'vmmig.policy-not-authorized'
    assert 'Policy rule %s refused' % rule in error['detail']
    assert stable_dump() == before


def test_a_member_may_not_read_a_reader_may(app):
    resp, data = call(app, 'GET', '/v1/hosts', headers=MEMBER)
    assert resp.status_int == 403
    assert 'vmmig:host:list' in error_of(resp, data)['detail']
    resp, data = call(app, 'GET', '/v1/hosts', headers=READER)
    assert resp.status_int == 200
    assert {h['name'] for h in data['hosts']} >= {'sim-a', 'sim-b'}


def test_not_found_is_404(app):
    resp, data = call(app, 'GET', '/v1/migrations/%s' % uuid.uuid4())
    assert resp.status_int == 404
    assert error_of(resp, data)['code'] == 'vmmig.migration-not-found'
    resp, data = call(app, 'GET', '/v1/servers/nope-1/eligible-hosts')
    assert resp.status_int == 404


class _Served(logging.Handler):
    """(message, request id of the context the logging thread serves)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        ctxt = context.get_current()
        self.lines.append((record.getMessage(), getattr(ctxt, 'request_id', None)))


def test_the_request_id_is_answered_and_reaches_the_conductor(app):
    served = _Served()
    # The conductor's logger, at INFO whatever earlier tests left on its parents.
    logger = logging.getLogger('vmmig.conductor.manager')
    logger.addHandler(served)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        resp, data = call(app, 'POST', '/v1/migrations',
                          body={'instance': 'legacy-1', 'migration_type': 'cold',
                                'hold_reason': 'later'})
    finally:
        logger.removeHandler(served)
        logger.setLevel(level)
    assert resp.status_int == 202, data
    request_id = resp.headers['x-openstack-request-id']
    assert request_id.startswith('req-')
    # The conductor's lines about the request were logged serving that request.
    lines = [m for m, rid in served.lines if rid == request_id]
    assert any('legacy-1' in m for m in lines), served.lines


def test_an_unreachable_conductor_is_503(cloud):
    cloud.conf.conf.config(topic='nobody-listens', group='conductor')
    app = api_app.build(lambda ctxt: rpcapi.ConductorAPI(timeout=1, context=ctxt))
    resp, data = call(app, 'GET', '/v1/hosts')
    assert resp.status_int == 503
    error = error_of(resp, data)
    assert error['code'] == 'vmmig.conductor-unavailable'
    assert 'vmmig-conductor' in error['detail']
