"""The Keystone fixture is a real Keystone: tokens, roles, scopes and expiry as Keystone says."""

import datetime
import os
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests import fixtures as test_fixtures
from tests.openstack import keystone as keystone_mod


@pytest.fixture(scope='module')
def validate(keystone):
    """GET /v3/auth/tokens of a token, as the bootstrap admin (it is an admin's call)."""
    admin = keystone.session('admin')

    def validate(subject_token):
        return requests.get(keystone.auth_url + '/auth/tokens', timeout=30,
                            headers={'X-Auth-Token': admin.get_token(),
                                     'X-Subject-Token': subject_token})
    return validate


@pytest.fixture(scope='module')
def token_body(validate):
    """What Keystone says of a token it accepts."""
    def token_body(subject_token):
        r = validate(subject_token)
        assert r.status_code == 200, r.text
        return r.json()['token']
    return token_body


def test_every_user_gets_a_token_on_its_project(keystone, token_body):
    expected = {'vmmig-admin': 'vmmig', 'vmmig-member': 'vmmig', 'vmmig-reader': 'vmmig',
                'other-admin': 'other', 'vmmig': 'service', 'nova': 'service',
                'placement': 'service', 'neutron': 'service', 'glance': 'service'}
    assert set(expected) <= set(keystone.users)
    for user, project in expected.items():
        body = token_body(keystone.token(user))
        assert body['user']['name'] == user
        assert body['project']['name'] == project
        assert body['project']['id'] == keystone.projects[project]


def test_roles_carried_by_each_token(keystone, token_body):
    def roles(user):
        return {r['name'] for r in token_body(keystone.token(user))['roles']}

    # Keystone's implied roles: admin implies manager, member and reader; member implies reader.
    assert roles('vmmig-reader') == {'reader'}
    assert roles('vmmig-member') == {'member', 'reader'}
    assert 'admin' in roles('vmmig-admin')
    assert {'admin', 'service'} <= roles('nova')
    assert 'service' not in roles('vmmig-admin')


def test_other_project_token_is_scoped_to_other(keystone, token_body):
    body = token_body(keystone.token('other-admin'))
    assert body['project']['name'] == 'other'
    assert body['project']['id'] == keystone.projects['other'] != keystone.projects['vmmig']


def test_expired_token_is_refused(keystone, validate, token_body):
    lifetime = 10
    token = keystone.short_lived_token('vmmig-member', lifetime)
    body = token_body(token)
    assert body['user']['name'] == 'vmmig-member'
    assert body['project']['name'] == 'vmmig'
    assert {r['name'] for r in body['roles']} == {'member', 'reader'}
    expires = datetime.datetime.fromisoformat(body['expires_at'].replace('Z', '+00:00'))
    left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 0 < left <= lifetime
    time.sleep(left + 1)
    r = validate(token)
    assert r.status_code == 404, r.text
    # Nor does it open anything any more, not even a look at itself.
    r = requests.get(keystone.auth_url + '/auth/tokens', timeout=30,
                     headers={'X-Auth-Token': token, 'X-Subject-Token': token})
    assert r.status_code == 401, r.text


def test_forged_token_is_refused(keystone, validate):
    real = keystone.token('vmmig-admin')
    # A made-up fernet-looking string, and a real token with its signature changed.
    tampered = real[:-4] + ('AAAA' if real[-4:] != 'AAAA' else 'BBBB')
    for forged in ('gAAAAA' + uuid.uuid4().hex * 3, tampered):
        assert validate(forged).status_code == 404
        r = requests.get(keystone.auth_url + '/projects', timeout=30,
                         headers={'X-Auth-Token': forged})
        assert r.status_code == 401, r.text


def test_session_and_auth_env_log_in(keystone):
    sess = keystone.session('vmmig-reader')
    assert sess.get_project_id() == keystone.projects['vmmig']
    env = keystone.auth_env('vmmig-reader')
    assert env['OS_AUTH_URL'] == keystone.auth_url
    assert env['OS_USERNAME'] == 'vmmig-reader'
    assert env['OS_PASSWORD'] == keystone.users['vmmig-reader']
    assert env['OS_PROJECT_NAME'] == 'vmmig'
    # A wrong password is refused: the users' passwords are Keystone's, not ours.
    r = requests.post(keystone.auth_url + '/auth/tokens', timeout=30, json={'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': 'vmmig-reader', 'domain': {'id': 'default'}, 'password': 'wrong'}}}}})
    assert r.status_code == 401


def test_registered_service_is_in_the_catalog(keystone, token_body):
    keystone.register_service('vmmig-test', 'vmmig-test-type', 'http://127.0.0.1:9/first')
    keystone.register_service('vmmig-test', 'vmmig-test-type', 'http://127.0.0.1:9/again')
    sess = keystone.session('vmmig-member')
    for interface in ('public', 'internal', 'admin'):
        assert sess.get_endpoint(service_type='vmmig-test-type', interface=interface,
                                 region_name='RegionOne') == 'http://127.0.0.1:9/again'
    catalog = token_body(keystone.token('vmmig-member'))['catalog']
    assert [s['name'] for s in catalog if s['type'] == 'vmmig-test-type'] == ['vmmig-test']
    assert len([s for s in catalog if s['type'] == 'identity']) == 1


def test_a_keystone_that_cannot_start_fails_loudly_and_leaves_nothing():
    if not keystone_mod.installed():
        pytest.skip('Keystone is not installed in %s: run tools/openstack/setup-keystone.sh'
                    % keystone_mod.DEFAULT_VENV)
    broken = keystone_mod.Keystone(conf={'token': {'provider': 'no-such-provider'}})
    with pytest.raises(keystone_mod.KeystoneError) as raised:
        broken.start()
    # The error carries Keystone's own words from its log, not just "it did not start".
    assert 'last lines of' in str(raised.value)
    assert 'no-such-provider' in str(raised.value)
    assert not os.path.exists(os.path.dirname(broken.log_path))
    assert broken.database_name
    admin = sa.create_engine(test_fixtures.SERVER_URLS['postgresql'])
    with admin.connect() as conn:
        left = conn.exec_driver_sql('SELECT count(*) FROM pg_database WHERE datname = %(name)s',
                                    {'name': broken.database_name}).scalar()
    admin.dispose()
    assert left == 0
