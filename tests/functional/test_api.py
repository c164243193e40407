"""vmmig-api as a process in front of a conductor and agents over RabbitMQ: the vmmig
command gives the same output over HTTP as over RPC, every operation of the CLI goes
through the API, and a request id answered by the API is in the conductor's and the
agent's logs.

The API here takes who asks from the headers ([api] auth_strategy = noauth, the CLI
sends the local user and [cli] roles); test_api_keystone.py runs it behind
keystonemiddleware against a real Keystone.
"""

import getpass
import json
import re
import time

from keystoneauth1 import session as ks_session
import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from vmmig.api import client as api_client

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]


def _vm(host, location='local', power_state='shutoff', **extra):
    return dict(host=host, vcpus=1, memory_mb=512, power_state=power_state,
                disks=[{'name': 'vda', 'size_gb': 1, 'location': location}], **extra)


CLUSTER = {
    'hosts': {h: {'shared_storage': 'nfs', 'cpu_features': ['sse4.2']}
              for h in ('h1', 'h2', 'h3')},
    'instances': {
        'live-1': _vm('h1', 'shared', 'running'),
        'cold-1': _vm('h1'),
        'held-1': _vm('h2'),
        'drain-1': _vm('h3'),
        'drain-2': _vm('h3', 'shared', 'running'),
    },
}
TERMINAL = ('completed', 'failed', 'cancelled', 'error')


class Cloud(object):
    def __init__(self, services, api, engine):
        self.services, self.api, self.engine = services, api, engine

    def rpc(self, *args):
        return self.services.cli(*args, check=False)

    def http(self, *args):
        return self.services.cli('--os-endpoint', self.api.url, *args, check=False)

    def both(self, *args):
        """Run ``vmmig args`` over RPC and over HTTP; both must say the same."""
        over_rpc, over_http = self.rpc(*args), self.http(*args)
        assert (over_http.returncode, over_http.stdout, over_http.stderr) == (
            over_rpc.returncode, over_rpc.stdout, over_rpc.stderr), args
        return over_http

    def ok(self, result):
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout) if result.stdout.strip().startswith(
            ('{', '[')) else result.stdout

    def rows(self, sql, **params):
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    def migration(self, ident):
        [row] = self.rows('SELECT * FROM migrations WHERE id = :i', i=ident)
        return row

    def wait_ended(self, ident, timeout=60):
        deadline = time.monotonic() + timeout
        while self.migration(ident)['state'] not in TERMINAL:
            assert time.monotonic() < deadline, self.migration(ident)
            time.sleep(0.1)
        return self.migration(ident)

    def client(self):
        return api_client.ApiClient(ks_session.Session(), endpoint=self.api.url,
                                    headers={'X-Roles': 'admin', 'X-User-Name': 'tester'})


@pytest.fixture(scope='module')
def cloud():
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture)
        return fixture

    try:
        database = use(vfix.DatabaseFixture('sqlite'))
        services = use(vfix.ServiceProcesses(sorted(CLUSTER['hosts']), database.url,
                                             cluster=CLUSTER))
        api = use(vfix.ApiProcess(services, {'api': {'auth_strategy': 'noauth'}}))
        engine = sa.create_engine(database.url)
        yield Cloud(services, api, engine)
        engine.dispose()
    finally:
        while stack:
            stack.pop().cleanUp()


def test_reads_and_refusals_print_the_same_both_ways(cloud):
    cloud.ok(cloud.both('host', 'list', '-f', 'json', '-c', 'Name', '-c', 'State',
                        '-c', 'Maintenance', '-c', 'Cluster'))
    cloud.ok(cloud.both('host', 'eligible', 'live-1', '--live-migration'))
    cloud.ok(cloud.both('host', 'eligible', 'cold-1', '-f', 'json'))
    cloud.ok(cloud.both('host', 'maintenance', 'set', 'h3', '--reason', 'disk swap',
                        '--dry-run', '-f', 'json'))
    # Refusals: the same one line, exit 1.
    for args in (('migration', 'show', '4242'),
                 ('host', 'eligible', 'nope-1'),
                 ('server', 'evacuate', '--host', 'h2'),
                 ('server', 'migrate', 'live-1', '--host', 'h1', '--live-migration'),
                 ('host', 'maintenance', 'unset', 'h1'),
                 ('plan', 'show', '99')):
        result = cloud.both(*args)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, args
    assert cloud.rows('SELECT * FROM migrations') == []
    assert cloud.rows('SELECT * FROM action_plans') == []


def test_migrations_through_the_api(cloud):
    # Live, waited for.
    shown = cloud.ok(cloud.http('server', 'migrate', 'live-1', '--host', 'h2',
                                '--live-migration', '--wait', '-f', 'json'))
    assert shown['state'] == 'completed', shown
    live = cloud.migration(shown['id'])
    assert (live['state'], live['vm_location']) == ('completed', 'h2')
    # Cold, held; a held migration cannot be forced; resumed, it completes.
    held = cloud.ok(cloud.http('server', 'migrate', 'cold-1', '--hold', 'window at 22:00',
                               '-f', 'json'))
    assert held['state'] == 'held' and held['hold_reason'] == 'window at 22:00'
    # Who holds it: the user the CLI named in its headers (noauth), the local one.
    assert cloud.migration(held['id'])['held_by'] == getpass.getuser()
    refused = cloud.both('migration', 'force-complete', str(held['id']))
    assert refused.returncode == 1 and 'held' in refused.stderr
    resumed = cloud.ok(cloud.http('migration', 'resume', str(held['id']), '--wait',
                                  '-f', 'json'))
    assert resumed['state'] == 'completed'
    assert cloud.rows("SELECT host FROM instances WHERE name = 'cold-1'")[0]['host'] \
        in ('h2', 'h3')
    # Queued then held by hand, then aborted: the VM stays.
    queued = cloud.ok(cloud.http('server', 'migrate', 'held-1', '--hold', 'first',
                                 '-f', 'json'))
    cloud.ok(cloud.http('migration', 'abort', str(queued['id']), '--wait', '-f', 'json'))
    assert cloud.migration(queued['id'])['state'] == 'cancelled'
    assert cloud.rows("SELECT host FROM instances WHERE name = 'held-1'")[0]['host'] == 'h2'
    again = cloud.ok(cloud.http('server', 'migrate', 'held-1', '--hold', 'first',
                                '-f', 'json'))
    hold = cloud.http('migration', 'hold', str(again['id']), '--reason', 'second')
    assert hold.returncode == 1 and 'held' in hold.stderr  # already held: 409
    cloud.ok(cloud.http('migration', 'abort', str(again['id'])))
    # Every record reads the same both ways.
    for ident in (shown['id'], held['id'], queued['id']):
        cloud.ok(cloud.both('migration', 'show', str(ident), '-f', 'json'))
    cloud.ok(cloud.both('migration', 'list', '-f', 'json'))
    cloud.ok(cloud.both('migration', 'list', '--instance', 'cold-1'))
    # The progress of a migration, as the API gives it.
    progress = cloud.client().migration_progress_get(shown['id'])
    assert progress['state'] == 'completed' and progress['bytes_total']


def test_maintenance_and_plans_through_the_api(cloud):
    plan = cloud.ok(cloud.http('host', 'maintenance', 'set', 'h3', '--reason', 'disk swap',
                               '--wait', '-f', 'json'))
    assert plan['state'] == 'succeeded', plan
    assert cloud.rows("SELECT COUNT(*) AS n FROM instances WHERE host = 'h3'")[0]['n'] == 0
    cloud.ok(cloud.both('plan', 'list', '-f', 'json'))
    cloud.ok(cloud.both('plan', 'show', str(plan['id']), '-f', 'json'))
    for verb in ('execute', 'abort'):
        refused = cloud.both('plan', verb, str(plan['id']), '--dry-run')
        assert refused.returncode == 1 and 'succeeded' in refused.stderr
    host = cloud.ok(cloud.http('host', 'maintenance', 'unset', 'h3', '-f', 'json'))
    assert host['maintenance'] is False
    # What the CLI has no command for: the VMs of a host, a host's health.
    client = cloud.client()
    assert {s['name'] for s in client.instance_list(host='h2')} >= {'live-1'}
    assert client.host_health('h1', 'ok')['action'] == 'none'


def test_the_request_id_reaches_the_conductor_and_the_agent(cloud):
    session = ks_session.Session()
    resp = session.post(cloud.api.url + '/v1/migrations', json={
        'instance': 'live-1', 'migration_type': 'live', 'host': 'h3'},
        headers={'X-Roles': 'admin', 'X-User-Name': 'tester'}, raise_exc=False)
    assert resp.status_code == 202, resp.text
    request_id = resp.headers['x-openstack-request-id']
    migration = resp.json()['migration']
    assert cloud.wait_ended(migration['id'])['state'] == 'completed'
    conductor = [line for line in cloud.services.log('conductor-0').splitlines()
                 if request_id in line]
    assert any('live-1' in line for line in conductor), request_id
    agent = [line for line in cloud.services.log('agent-h2').splitlines()
             if request_id in line and 'live-1' in line]
    assert agent, request_id
    assert re.match(r'req-[0-9a-f-]{36}$', request_id)
