"""vmmig-api behind keystonemiddleware against a real Keystone, in front of a
conductor and agents over RabbitMQ.

The vmmig command finds the API in the catalog (service type vm-migration) and
prints what it prints over RPC; every endpoint lets an admin of project vmmig
through and refuses a member and a reader (a reader may read), naming the rule and
changing nothing; an expired, forged or other-project token is refused.
"""

import os
import re
import subprocess
import sys
import time

from keystoneauth1 import adapter
from keystoneauth1 import session as ks_session
import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.functional import test_api
from tests.functional import test_recovery as tr
from vmmig.api import handlers

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

SERVICE_TYPE = 'vm-migration'
CLUSTER = test_api.CLUSTER


class Stack(object):
    def __init__(self, keystone, services, api, engine):
        self.keystone, self.services, self.api, self.engine = (keystone, services, api,
                                                               engine)
        self.in_catalog = True

    def cli(self, user, *args, env=None):
        """vmmig as ``user`` (its OS_* variables: the API from the catalog)."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
        environ.update(self.keystone.auth_env(user) if user else {})
        environ.update(env or {})
        return subprocess.run(self.services._argv('vmmig.cmd.cli', args),
                              capture_output=True, text=True, timeout=120, env=environ)

    def rpc(self, *args):
        return self.services.cli(*args, check=False)

    def adapter(self, user):
        # A stack not in the catalog is asked at its own URL.
        return adapter.Adapter(self.keystone.session(user), service_type=SERVICE_TYPE,
                               interface='public', raise_exc=False,
                               endpoint_override=None if self.in_catalog else self.api.url)

    def snapshot(self):
        """What a refused request must not change: migrations, plans, VMs' places."""
        out = {}
        with self.engine.connect() as conn:
            for table, columns in (('migrations', '*'), ('action_plans', '*'),
                                   ('plan_actions', '*'),
                                   ('instances', 'name, host, power_state'),
                                   ('hosts', 'name, maintenance, maintenance_reason')):
                out[table] = sorted(map(tuple, conn.execute(sa.text(
                    'SELECT %s FROM %s' % (columns, table)))), key=repr)
        return out


@pytest.fixture(scope='module')
def stack(keystone):
    yield from _stack(keystone, CLUSTER)


def _stack(keystone, cluster, extra_conf=None, in_catalog=True):
    fixtures_ = []

    def use(fixture):
        fixture.setUp()
        fixtures_.append(fixture)
        return fixture

    try:
        database = use(vfix.DatabaseFixture('sqlite'))
        # The conductor enforces the policy: it holds [api] operator_projects.
        services = use(vfix.ServiceProcesses(
            sorted(cluster['hosts']), database.url, cluster=cluster,
            extra_conf=dict(extra_conf or {}, api={'operator_projects': 'vmmig'})))
        api = use(vfix.ApiProcess(services, {
            'api': {'auth_strategy': 'keystone'},
            'keystone_authtoken': {
                'www_authenticate_uri': keystone.auth_url, 'auth_url': keystone.auth_url,
                'auth_type': 'password', 'username': 'vmmig',
                'password': keystone.users['vmmig'], 'project_name': 'service',
                'user_domain_id': 'default', 'project_domain_id': 'default',
                'region_name': 'RegionOne'}}))
        if in_catalog:
            keystone.register_service('vmmig', SERVICE_TYPE, api.url)
        engine = sa.create_engine(database.url)
        stack = Stack(keystone, services, api, engine)
        stack.in_catalog = in_catalog
        yield stack
        engine.dispose()
    finally:
        while fixtures_:
            fixtures_.pop().cleanUp()


def test_the_cli_finds_the_api_in_the_catalog_and_prints_what_rpc_prints(stack):
    held = stack.cli('vmmig-admin', 'server', 'migrate', 'cold-1', '--hold', 'later',
                     '-f', 'json')
    assert held.returncode == 0, held.stderr
    for args in (('migration', 'list', '-f', 'json'), ('migration', 'show', '1'),
                 ('host', 'eligible', 'live-1', '--live-migration'),
                 ('host', 'list', '-c', 'Name', '-c', 'State'),
                 ('plan', 'list'), ('migration', 'show', '4242'),
                 ('server', 'evacuate', '--host', 'h2')):
        over_http, over_rpc = stack.cli('vmmig-admin', *args), stack.rpc(*args)
        assert (over_http.returncode, over_http.stdout, over_http.stderr) == (
            over_rpc.returncode, over_rpc.stdout, over_rpc.stderr), args
    # Who held it: the token's user, not the local one.
    with stack.engine.connect() as conn:
        assert conn.execute(sa.text('SELECT held_by FROM migrations WHERE id = 1')
                            ).scalar() == 'vmmig-admin'
    aborted = stack.cli('vmmig-admin', 'migration', 'abort', '1', '--wait')
    assert aborted.returncode == 0, aborted.stderr


def test_a_reader_reads_and_is_refused_a_move_by_the_cli(stack):
    before = stack.snapshot()
    refused = stack.cli('vmmig-reader', 'server', 'migrate', 'live-1', '--live-migration')
    assert refused.returncode == 1
    assert refused.stderr.startswith('Policy rule vmmig:migration:create refused'), \
        refused.stderr
    assert 'vmmig-reader of project vmmig' in refused.stderr
    assert stack.snapshot() == before
    assert stack.cli('vmmig-reader', 'migration', 'list').returncode == 0


def test_wrong_credentials_and_unreachable_keystone_are_one_line(stack):
    wrong = stack.cli('vmmig-admin', 'migration', 'list', env={'OS_PASSWORD': 'wrong'})
    assert wrong.returncode == 1
    assert wrong.stderr.startswith('Keystone: the credentials were refused'), wrong.stderr
    assert len(wrong.stderr.splitlines()) == 1
    gone = stack.cli('vmmig-admin', 'migration', 'list', env={
        'OS_AUTH_URL': 'http://127.0.0.1:%d/v3' % vfix.free_port()})
    assert gone.returncode == 1
    assert gone.stderr.startswith('Keystone: cannot be reached at'), gone.stderr
    assert len(gone.stderr.splitlines()) == 1


# Every endpoint, every role ------------------------------------------------------------

def _requests():
    """(handler name, method, path, body) of every route, with values it accepts."""
    values = {'migration': '1', 'host': 'h3', 'instance': 'cold-1', 'plan': '1'}
    bodies = {
        'migration_create': {'instance': 'held-1', 'migration_type': 'cold',
                             'hold_reason': 'policy test'},
        'migration_hold': {'reason': 'policy test'},
        'host_maintenance_set': {'reason': 'policy test', 'dry_run': True},
        'host_health': {'status': 'ok'},
        'host_evacuate': {},
    }
    for method, path, handler in handlers.ROUTES:
        name = handler.__name__
        yield name, method, '/v1' + re.sub(r'\{(\w+)\}', lambda m: values[m.group(1)],
                                           path), bodies.get(name)


READS = {'migration_list', 'migration_show', 'migration_progress', 'host_list',
         'server_list', 'server_eligible_hosts', 'plan_list', 'plan_show'}


def test_every_route_is_in_the_table():
    names = {name for name, *_ in _requests()}
    assert len(names) == len(handlers.ROUTES) == 19
    assert READS < names


@pytest.mark.parametrize('user', ['vmmig-member', 'vmmig-reader', 'other-admin'])
def test_every_endpoint_refuses_who_may_not_and_changes_nothing(stack, user):
    api = stack.adapter(user)
    wrong = []
    for name, method, path, body in _requests():
        before = stack.snapshot()
        resp = api.request(path, method, json=body)
        # Keystone's implied roles make a member a reader too (member implies reader):
        # its token carries both, so it reads. Over RPC, a context of only 'member'
        # reads nothing (tests/unit/semantics/test_policy.py).
        may = user != 'other-admin' and name in READS
        if may:
            if resp.status_code == 403:
                wrong.append('%s refused: %s' % (name, resp.text))
            continue
        if resp.status_code != 403:
            wrong.append('%s answered %s: %s' % (name, resp.status_code, resp.text[:200]))
            continue
        [error] = resp.json()['errors']
        if not (error['detail'].startswith('Policy rule vmmig:') and user in error['detail']
                and error['request_id'] == resp.headers['x-openstack-request-id']):
            wrong.append('%s: %s' % (name, error))
        if stack.snapshot() != before:
            wrong.append('%s changed the database' % name)
    assert not wrong, '\n'.join(wrong)


def test_every_endpoint_lets_an_admin_through(stack):
    api = stack.adapter('vmmig-admin')
    # A held migration for the verbs to act on.
    resp = api.post('/v1/migrations', json={'instance': 'held-1', 'migration_type': 'cold',
                                            'hold_reason': 'admin test'})
    assert resp.status_code == 202, resp.text
    wrong = []
    for name, method, path, body in _requests():
        if name == 'migration_create':
            continue
        path = path.replace('/migrations/1', '/migrations/%s' % resp.json()['migration']['id'])
        answer = api.request(path, method, json=body)
        # 400 (evacuating a host that is up), 404 (no plan 1), 409 (a state conflict):
        # answers from past the policy.
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            wrong.append('%s answered %s: %s' % (name, answer.status_code, answer.text))
    assert not wrong, '\n'.join(wrong)


def test_expired_and_forged_tokens_are_refused(stack):
    expiring = stack.keystone.short_lived_token('vmmig-admin', 2)
    time.sleep(4)
    before = stack.snapshot()
    for token in (expiring, 'gAAAAABforged' + 'x' * 150):
        resp = ks_session.Session().post(
            stack.api.url + '/v1/migrations', headers={'X-Auth-Token': token},
            json={'instance': 'live-1', 'migration_type': 'live'}, raise_exc=False)
        assert resp.status_code == 401, resp.text
        [error] = resp.json()['errors']
        assert error['code'] == 'vmmig.unauthorized'
        assert 'X-Auth-Token' in error['detail']
    assert stack.snapshot() == before


def test_the_request_id_of_a_token_holder_reaches_the_conductor_and_agent(stack):
    api = stack.adapter('vmmig-admin')
    resp = api.post('/v1/migrations', json={'instance': 'live-1', 'migration_type': 'live',
                                            'host': 'h3'})
    assert resp.status_code == 202, resp.text
    request_id = resp.headers['x-openstack-request-id']
    ident = resp.json()['migration']['id']
    deadline = time.monotonic() + 60
    while api.get('/v1/migrations/%s' % ident).json()['migration']['state'] not in \
            test_api.TERMINAL:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert any('live-1' in line and request_id in line
               for line in stack.services.log('conductor-0').splitlines())
    assert any('live-1' in line and request_id in line
               for line in stack.services.log('agent-h1').splitlines())


def test_an_api_whose_keystone_is_unreachable_answers_503_and_401(stack):
    """A second vmmig-api whose [keystone_authtoken] names a Keystone that is not there:
    a real token cannot be checked (503 naming Keystone); no token is 401."""
    gone = 'http://127.0.0.1:%d/v3' % vfix.free_port()
    api = vfix.ApiProcess(stack.services, {
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': {
            'www_authenticate_uri': gone, 'auth_url': gone, 'auth_type': 'password',
            'username': 'vmmig', 'password': stack.keystone.users['vmmig'],
            'project_name': 'service', 'user_domain_id': 'default',
            'project_domain_id': 'default', 'http_request_max_retries': '0'}},
        name='api-lost')
    api.setUp()
    try:
        before = stack.snapshot()
        token = stack.keystone.token('vmmig-admin')
        resp = ks_session.Session().post(
            api.url + '/v1/migrations', headers={'X-Auth-Token': token},
            json={'instance': 'live-1', 'migration_type': 'live'}, raise_exc=False)
        assert resp.status_code == 503, resp.text
        [error] = resp.json()['errors']
        assert error['code'] == 'vmmig.identity-unavailable'
        assert 'Keystone' in error['detail']
        resp = ks_session.Session().get(api.url + '/v1/hosts', raise_exc=False)
        assert resp.status_code == 401
        assert stack.snapshot() == before
    finally:
        api.cleanUp()


def test_the_openstack_plugin_prints_what_vmmig_prints(stack):
    """`openstack vmmig ...` (osc-lib plugin) with the same session as `vmmig`."""
    openstack = os.path.join(os.path.dirname(sys.executable), 'openstack')
    environ = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    environ.update(stack.keystone.auth_env('vmmig-admin'))
    for args in (('migration', 'list', '-f', 'json'),
                 ('host', 'eligible', 'cold-1'),
                 ('host', 'maintenance', 'set', 'h2', '--reason', 'osc', '--dry-run',
                  '-f', 'json'),
                 ('plan', 'list')):
        mine = stack.cli('vmmig-admin', *args)
        theirs = subprocess.run([openstack, 'vmmig'] + list(args), capture_output=True,
                                text=True, timeout=120, env=environ)
        assert mine.returncode == 0, mine.stderr
        assert (theirs.returncode, theirs.stdout) == (0, mine.stdout), theirs.stderr
    refused = subprocess.run([openstack, 'vmmig', 'migration', 'show', '4242'],
                             capture_output=True, text=True, timeout=120, env=environ)
    assert refused.returncode == 1
    assert 'Migration 4242 could not be found.' in refused.stderr


def test_a_malformed_body_and_an_unknown_version_are_named_and_record_nothing(stack):
    api = stack.adapter('vmmig-admin')
    before = stack.snapshot()
    resp = api.post('/v1/migrations', data=b'{"instance": "live-1", ',
                    headers={'Content-Type': 'application/json'})
    assert resp.status_code == 400
    [error] = resp.json()['errors']
    assert error['code'] == 'vmmig.malformed-body' and 'not valid JSON' in error['detail']
    resp = api.post('/v1/migrations', json={'instance': 'live-1', 'migration_type': 'live',
                                            'host': 'h1/../h2'})
    assert resp.status_code == 400
    assert resp.json()['errors'][0]['detail'].startswith('body field host ')
    resp = api.get('/v3/migrations')
    assert resp.status_code == 404
    assert 'API version v3 is not available' in resp.json()['errors'][0]['detail']
    assert stack.snapshot() == before


# An evacuation through the API ---------------------------------------------------------

EVACUATION = {
    'hosts': {h: {'shared_storage': 'nfs', 'cpu_features': ['sse4.2']} for h in ('e1', 'e2')},
    'instances': {'ev-run': test_api._vm('e1', 'shared', 'running'),
                  'ev-off': test_api._vm('e1', 'shared', 'shutoff')},
}


@pytest.fixture(scope='module')
def dying(keystone):
    """A stack whose host e1 can be killed: no HA monitor (the operator evacuates),
    a host silent for 1 s is down and the heartbeat fencing confirms it 1 s later."""
    yield from _stack(keystone, EVACUATION, in_catalog=False, extra_conf={
        'ha': {'enabled': 'false'},
        'conductor': {'heartbeat_timeout': '1', 'fencing_grace': '1'}})


def test_an_admin_evacuates_a_dead_host_through_the_api(dying):
    member, admin = dying.adapter('vmmig-member'), dying.adapter('vmmig-admin')
    dying.services.kill('agent-e1')
    with dying.engine.connect() as conn:
        tr.wait_for(lambda: conn.execute(sa.text(
            "SELECT state FROM hosts WHERE name = 'e1'")).scalar() == 'down', 30, 'e1 down')
    before = dying.snapshot()
    refused = member.post('/v1/hosts/e1/evacuate', json={})
    assert refused.status_code == 403, refused.text
    assert 'vmmig:host:evacuate' in refused.text
    assert dying.snapshot() == before
    # The heartbeat fencing confirms e1 [conductor] fencing_grace after it went silent.
    deadline = time.monotonic() + 30
    while True:
        answer = admin.post('/v1/hosts/e1/evacuate', json={'target_host': 'e2'})
        if answer.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 202, answer.text
    migrations = answer.json()['migrations']
    assert sorted(m['instance'] for m in migrations) == ['ev-off', 'ev-run'], migrations

    def shown(migration_id):
        return admin.get('/v1/migrations/%s' % migration_id).json()['migration']

    for m in migrations:
        tr.wait_for(lambda: shown(m['id'])['state'] in test_api.TERMINAL, 60,
                    'migration %s ends' % m['id'])
        record = shown(m['id'])
        assert (record['migration_type'], record['state']) == ('evacuate', 'completed'), \
            record
        # Who asked: the token's user.
        assert record['requested_by'] == 'vmmig-admin', record
    # Where each VM is, and in what power state: as it was before e1 died.
    with dying.engine.connect() as conn:
        placed = dict((r[0], (r[1], r[2])) for r in conn.execute(sa.text(
            'SELECT name, host, power_state FROM instances')))
    assert placed == {'ev-run': ('e2', 'running'), 'ev-off': ('e2', 'shutoff')}, placed
    listed = admin.get('/v1/servers', params={'host': 'e2'})
    assert listed.status_code == 200, listed.text
    assert sorted((v['name'], v['power_state']) for v in listed.json()['servers']) == [
        ('ev-off', 'shutoff'), ('ev-run', 'running')]
