"""vmmig on a real Nova: [drivers] backend = nova against Nova's services.

Keystone, placement, nova-api, -conductor, -scheduler and three nova-compute services
with Nova's fake virt drivers (the session's ``nova_cloud``, tests/openstack); one
vmmig-conductor process over RabbitMQ and PostgreSQL, configured as the README says
([nova] in its file), asked with the ``vmmig`` CLI. nova-a and nova-b finish a live
migration at once (fake.FakeDriver); a live migration out of nova-live keeps running
until it is aborted or forced to complete (fake.FakeLiveMigrateDriver; Nova ends it
by itself after about 5 s). Every test ends with the server where Nova says and
vmmig's records saying the same, and deletes its servers (the Nova is shared).
"""

import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.openstack import nova as openstack_nova

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

COMPUTES = ('nova-a', 'nova-b', 'nova-live')
TERMINAL = ('completed', 'failed', 'cancelled', 'error')
#: Nova's server status -> vmmig's power state
POWER = {'ACTIVE': 'running', 'SHUTOFF': 'shutoff', 'SUSPENDED': 'suspended',
         'PAUSED': 'paused'}


def nova_section(keystone, **changes):
    """[nova] of vmmig.conf: vmmig's service user, Nova's endpoint from the catalogue."""
    env = keystone.auth_env('vmmig')
    section = {
        'auth_type': 'password', 'auth_url': env['OS_AUTH_URL'],
        'username': env['OS_USERNAME'], 'password': env['OS_PASSWORD'],
        'project_name': env['OS_PROJECT_NAME'],
        'user_domain_id': env['OS_USER_DOMAIN_ID'],
        'project_domain_id': env['OS_PROJECT_DOMAIN_ID'],
        'region_name': env['OS_REGION_NAME'], 'valid_interfaces': 'public',
        'sync_interval': '1', 'poll_interval': '0.2', 'operation_timeout': '120',
        # Evacuation rebuilds image-backed servers on their disks.
        'shared_instances_storage': 'true',
    }
    section.update(changes)
    return section


class Cloud(object):
    def __init__(self, nova, services, engine):
        self.nova = nova
        self.services = services
        self.engine = engine
        self.admin = nova.client('vmmig-admin')
        self.booted = []

    def cli(self, *args):
        result = self.services.cli(*args, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout) if '-f' in args else result.stdout

    def refused(self, *args):
        result = self.services.cli(*args, check=False)
        assert result.returncode != 0, result.stdout
        return result.stderr + result.stdout

    def one(self, query, **params):
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(query), params).mappings().first()
        return dict(row) if row is not None else None

    def migration(self, migration_id):
        return self.one('SELECT * FROM migrations WHERE id = :id', id=migration_id)

    def wait(self, predicate, what, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError('%s: not within %d s\n%s' % (
                    what, timeout, self.services.log('conductor-0')[-4000:]))
            time.sleep(0.1)

    def wait_end(self, migration_id, timeout=90):
        return self.wait(lambda: (lambda r: r if r['state'] in TERMINAL else None)(
            self.migration(migration_id)), 'migration %s ends' % migration_id, timeout)

    def boot(self, name, host, stopped=False):
        server_id = self.nova.boot(name, host=host, client=self.admin)
        self.booted.append(server_id)
        if stopped:
            self.admin.servers.stop(server_id)
            self.nova.wait_server(server_id, 'SHUTOFF', client=self.admin)
        # vmmig's discovery has seen it as Nova shows it.
        self.wait(lambda: self.recorded(name, host, 'shutoff' if stopped else 'running'),
                  'vmmig sees %s on %s' % (name, host))
        return server_id

    def recorded(self, name, host, power_state):
        row = self.one('SELECT host, power_state FROM instances WHERE name = :n', n=name)
        return row == {'host': host, 'power_state': power_state}

    def agree(self, name, server_id, host=None):
        """Nova's view of the server and vmmig's records tell the same; its host."""
        server = self.nova.wait_server(server_id, self.admin.servers.get(server_id).status,
                                       client=self.admin)
        nova_host = getattr(server, 'OS-EXT-SRV-ATTR:host')
        if host is not None:
            assert nova_host == host
        row = self.one('SELECT host, power_state, spec FROM instances WHERE name = :n',
                       n=name)
        assert (row['host'], row['power_state']) == (nova_host, POWER[server.status])
        last = self.one('SELECT * FROM migrations WHERE instance = :n ORDER BY id DESC '
                        'LIMIT 1', n=name)
        if last is not None and last['state'] == 'completed':
            assert (last['dest_host'], last['vm_location']) == (nova_host, nova_host)
        return nova_host

    def delete_booted(self):
        """Delete the servers a test made, and wait until Nova and vmmig forget them."""
        for server_id in self.booted:
            try:
                self.admin.servers.delete(server_id)
            except Exception:  # noqa: gone already
                pass
        left = set(self.booted)
        self.booted = []
        listed = lambda: {s.id for s in self.admin.servers.list(  # noqa: E731
            search_opts={'all_tenants': True})}
        self.wait(lambda: not (left & listed()), 'servers deleted in Nova', 60)
        self.wait(lambda: not [r for r in _rows(self, 'SELECT spec FROM instances')
                               if r['spec'].get('uuid') in left],
                  'vmmig forgot the deleted servers', 30)

    def nova_migrations(self, server_id):
        return [m.to_dict() for m in self.admin.migrations.list(instance_uuid=server_id)]

    def actions(self, server_id):
        return [a.action for a in self.admin.instance_action.list(server_id)]


@pytest.fixture(scope='module')
def vmmig_on_nova(nova_cloud, keystone):
    assert nova_cloud.compute_hosts == list(COMPUTES)
    database = vfix.DatabaseFixture('postgresql')
    database.setUp()
    services = vfix.ServiceProcesses([], database.url, extra_conf={
        'drivers': {'backend': 'nova', 'fencing': 'nova'},
        'ha': {'enabled': 'false'},
        'nova': nova_section(keystone),
    })
    engine = sa.create_engine(database.url)
    try:
        services.setUp()
        services.wait_for_hosts(list(COMPUTES))
        yield Cloud(nova_cloud, services, engine)
    finally:
        engine.dispose()
        services.cleanUp()
        database.cleanUp()


@pytest.fixture
def cloud(vmmig_on_nova):
    yield vmmig_on_nova
    vmmig_on_nova.delete_booted()


def test_live_migration_to_a_host_and_where_nova_chooses(cloud):
    server = cloud.boot('lm-1', 'nova-a')
    asked = cloud.cli('server', 'migrate', 'lm-1', '--live-migration', '--host', 'nova-b',
                      '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'completed', record['reason']
    assert cloud.agree('lm-1', server, 'nova-b') == 'nova-b'
    assert cloud.nova_migrations(server)[0]['status'] == 'completed'
    # No host: Nova's scheduler chooses, the record says where it went.
    asked = cloud.cli('server', 'migrate', 'lm-1', '--live-migration', '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'completed', record['reason']
    assert record['requested_host'] is None
    assert cloud.agree('lm-1', server) != 'nova-b'


def test_abort_of_a_running_live_migration(cloud):
    server = cloud.boot('abort-1', 'nova-live')
    asked = cloud.cli('server', 'migrate', 'abort-1', '--live-migration', '--host', 'nova-a',
                      '-f', 'json')
    cloud.wait(lambda: cloud.migration(asked['id'])['state'] == 'running', 'running', 30)
    cloud.cli('migration', 'abort', str(asked['id']), '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'cancelled', record['reason']
    assert cloud.nova_migrations(server)[0]['status'] == 'cancelled'
    # Nova was asked to abort it (its own record of the request).
    assert 'live_migration_cancel' in cloud.actions(server)
    cloud.agree('abort-1', server, 'nova-live')


def test_force_complete_of_a_running_live_migration(cloud):
    server = cloud.boot('force-1', 'nova-live')
    asked = cloud.cli('server', 'migrate', 'force-1', '--live-migration', '--host', 'nova-b',
                      '-f', 'json')
    cloud.wait(lambda: cloud.migration(asked['id'])['state'] == 'running', 'running', 30)
    began = time.monotonic()
    cloud.cli('migration', 'force-complete', str(asked['id']), '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'completed', record['reason']
    # Nova was asked (its own record of the request), not merely out-waited.
    assert 'live_migration_force_complete' in cloud.actions(server)
    assert time.monotonic() - began < 30
    cloud.agree('force-1', server, 'nova-b')


def test_cold_migration_with_its_confirmation(cloud):
    server = cloud.boot('cold-1', 'nova-a', stopped=True)
    asked = cloud.cli('server', 'migrate', 'cold-1', '--host', 'nova-b', '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'completed', record['reason']
    assert cloud.nova_migrations(server)[0]['status'] == 'confirmed'
    assert 'confirmResize' in cloud.actions(server)
    assert cloud.admin.servers.get(server).status == 'SHUTOFF'
    cloud.agree('cold-1', server, 'nova-b')


def test_held_migration_resumed(cloud):
    server = cloud.boot('held-1', 'nova-b')
    asked = cloud.cli('server', 'migrate', 'held-1', '--live-migration', '--host', 'nova-a',
                      '--hold', 'change window', '-f', 'json')
    assert asked['state'] == 'held'
    time.sleep(2)
    assert cloud.migration(asked['id'])['state'] == 'held'
    assert cloud.nova_migrations(server) == []
    cloud.cli('migration', 'resume', str(asked['id']), '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'completed', record['reason']
    assert record['hold_reason'] == 'change window'
    cloud.agree('held-1', server, 'nova-a')


def test_maintenance_drain_of_a_compute_host(cloud):
    running = cloud.boot('drain-1', 'nova-b')
    stopped = cloud.boot('drain-2', 'nova-b', stopped=True)
    on_it = [r['name'] for r in _rows(cloud, 'SELECT name FROM instances WHERE host = '
                                      "'nova-b'")]
    try:
        cloud.cli('host', 'maintenance', 'set', 'nova-b', '--reason', 'new DIMMs', '--wait')
        # Nova's scheduler is told too: its service is disabled, in vmmig's words.
        assert _service(cloud, 'nova-b') == ('disabled', 'vmmig maintenance: new DIMMs')
        plan = cloud.one("SELECT * FROM action_plans WHERE host = 'nova-b' ORDER BY id "
                         "DESC LIMIT 1")
        assert plan['state'] == 'succeeded', plan['result']
        assert [s.name for s in cloud.admin.servers.list(search_opts={
            'all_tenants': True, 'host': 'nova-b'})] == []
        assert _rows(cloud, "SELECT name FROM instances WHERE host = 'nova-b'") == []
        for name, server in (('drain-1', running), ('drain-2', stopped)):
            assert cloud.agree(name, server) != 'nova-b'
        assert cloud.one("SELECT power_state FROM instances WHERE name = 'drain-2'") == {
            'power_state': 'shutoff'}
        assert len(on_it) >= 2
        # Nova itself places nothing there now.
        new = cloud.admin.servers.create('drain-new', cloud.nova.image_id,
                                         cloud.admin.flavors.find(name='m1.tiny'),
                                         nics='none', host='nova-b')
        cloud.booted.append(new.id)
        fault = getattr(cloud.nova.wait_server(new.id, 'ERROR', client=cloud.admin), 'fault')
        assert 'No valid host' in fault['message'], fault
    finally:
        cloud.cli('host', 'maintenance', 'unset', 'nova-b')
    assert _service(cloud, 'nova-b') == ('enabled', None)


def test_a_compute_service_an_operator_disabled_is_left_as_it_is(cloud):
    cloud.admin.services.disable_log_reason(_service_id(cloud, 'nova-live'), 'rack rewiring')
    try:
        cloud.wait(lambda: (cloud.one("SELECT facts FROM hosts WHERE name = 'nova-live'")
                            ['facts'].get('unavailable')), 'vmmig sees nova-live disabled')
        cloud.cli('host', 'maintenance', 'set', 'nova-live', '--reason', 'firmware', '--wait')
        assert _service(cloud, 'nova-live') == ('disabled', 'rack rewiring')
        cloud.cli('host', 'maintenance', 'unset', 'nova-live')
        time.sleep(1)
        assert _service(cloud, 'nova-live') == ('disabled', 'rack rewiring')
    finally:
        cloud.admin.services.enable(_service_id(cloud, 'nova-live'))
    cloud.wait(lambda: not (cloud.one("SELECT facts FROM hosts WHERE name = 'nova-live'")
                            ['facts'].get('unavailable')), 'vmmig sees nova-live enabled')


def _service_id(cloud, host):
    return cloud.admin.services.list(host=host, binary='nova-compute')[0].id


def _service(cloud, host):
    service = cloud.admin.services.list(host=host, binary='nova-compute')[0]
    return service.status, service.disabled_reason


def test_novas_refusals_end_the_record_failed_in_its_words(cloud):
    # Wrong state: Nova migrates cold only active or stopped servers; vmmig's cold
    # migration takes a suspended one.
    suspended = cloud.boot('susp-1', 'nova-a')
    cloud.admin.servers.suspend(suspended)
    cloud.nova.wait_server(suspended, 'SUSPENDED', client=cloud.admin)
    cloud.wait(lambda: cloud.recorded('susp-1', 'nova-a', 'suspended'), 'suspended seen')
    asked = cloud.cli('server', 'migrate', 'susp-1', '--host', 'nova-b', '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'failed'
    assert record['reason'].startswith('Nova refused to migrate susp-1 to nova-b: ')
    assert 'suspended' in record['reason'] and 'HTTP 409' in record['reason']
    cloud.agree('susp-1', suspended, 'nova-a')
    # No valid host: anti-affinity, which only Nova's scheduler knows of.
    group = cloud.admin.server_groups.create(name='apart', policy='anti-affinity')
    flavor = cloud.admin.flavors.find(name='m1.tiny')
    ids = []
    for name, host in (('apart-1', 'nova-a'), ('apart-2', 'nova-b')):
        created = cloud.admin.servers.create(name, cloud.nova.image_id, flavor, nics='none',
                                             host=host, scheduler_hints={'group': group.id})
        cloud.booted.append(created.id)
        cloud.nova.wait_server(created.id, 'ACTIVE', client=cloud.admin)
        ids.append(created.id)
    cloud.wait(lambda: cloud.recorded('apart-1', 'nova-a', 'running'), 'apart-1 seen')
    asked = cloud.cli('server', 'migrate', 'apart-1', '--live-migration', '--host', 'nova-b',
                      '-f', 'json')
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'failed'
    assert 'No valid host' in record['reason'], record['reason']
    cloud.agree('apart-1', ids[0], 'nova-a')
    cloud.delete_booted()
    cloud.admin.server_groups.delete(group.id)


def test_a_server_nova_does_not_know(cloud):
    error = cloud.refused('server', 'migrate', 'ghost-1', '--live-migration')
    assert 'Nova knows no server ghost-1' in error
    assert cloud.one("SELECT id FROM migrations WHERE instance = 'ghost-1'") is None


@pytest.mark.parametrize('problem', ['unreachable', 'credentials'])
def test_unreachable_nova_and_wrong_credentials_are_named(cloud, keystone, tmp_path,
                                                          problem):
    """The CLI with its own embedded conductor and a [nova] of its own."""
    changes = ({'auth_url': 'http://127.0.0.1:%d/v3' % openstack_nova.free_port()}
               if problem == 'unreachable' else {'password': 'not-the-password'})
    conf = tmp_path / 'vmmig.conf'
    sections = {'DEFAULT': {'state_path': str(tmp_path)},
                'drivers': {'backend': 'nova'},
                'nova': nova_section(keystone, **changes)}
    conf.write_text(''.join('[%s]\n%s' % (s, ''.join('%s = %s\n' % kv for kv in v.items()))
                            for s, v in sections.items()))
    # Only this file: no transport_url, so the command runs its own conductor.
    result = subprocess.run([sys.executable, '-c', 'import sys; from vmmig.cmd.cli import '
                             'main; sys.exit(main(sys.argv[1:]))', '--config-file', str(conf),
                             'server', 'migrate', 'lm-1', '--live-migration'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    said = result.stderr + result.stdout
    if problem == 'unreachable':
        assert 'Nova cannot be reached' in said, said
    else:
        assert "Keystone refused vmmig's credentials for Nova" in said, said
        assert 'username vmmig' in said
    records = sa.create_engine('sqlite:///%s' % os.path.join(tmp_path, 'vmmig.sqlite'))
    try:
        with records.connect() as conn:
            assert conn.execute(sa.text('SELECT count(*) FROM migrations')).scalar() == 0
    finally:
        records.dispose()


def test_moves_behind_vmmigs_back_are_reconciled(cloud):
    # Moved by Nova alone: the next discovery records it where Nova put it.
    moved = cloud.boot('back-1', 'nova-a')
    cloud.admin.servers.live_migrate(moved, 'nova-b', 'auto')
    cloud.nova.wait_server(moved, 'ACTIVE', client=cloud.admin)
    cloud.wait(lambda: cloud.recorded('back-1', 'nova-b', 'running'), 'back-1 on nova-b')
    cloud.agree('back-1', moved, 'nova-b')
    # A live migration vmmig runs, aborted in Nova by someone else: failed, saying so.
    server = cloud.boot('back-2', 'nova-live')
    asked = cloud.cli('server', 'migrate', 'back-2', '--live-migration', '--host', 'nova-a',
                      '-f', 'json')
    running = cloud.wait(lambda: [m for m in cloud.admin.server_migrations.list(server)
                                  if m.status == 'running'], 'running in Nova', 30)
    cloud.admin.server_migrations.live_migration_abort(server, running[0].id)
    record = cloud.wait_end(asked['id'])
    assert record['state'] == 'failed'
    assert 'without vmmig asking' in record['reason'], record['reason']
    cloud.agree('back-2', server, 'nova-live')


def test_evacuation_of_a_host_whose_compute_was_killed_and_forced_down(cloud):
    server = cloud.boot('evac-1', 'nova-a')
    cloud.boot('peer-1', 'nova-b')
    on_it = [r['name'] for r in _rows(cloud, "SELECT name FROM instances WHERE "
                                             "host = 'nova-a'")]
    cloud.nova.kill_compute('nova-a')
    cloud.nova.force_down('nova-a')
    try:
        cloud.wait(lambda: cloud.one("SELECT state FROM hosts WHERE name = 'nova-a'") == {
            'state': 'down'}, 'nova-a down in vmmig')
        # vmmig's own checks run on what Nova reports, with Nova's words.
        verdicts = {v['Host']: v for v in cloud.cli(
            'host', 'eligible', 'peer-1', '--live-migration', '-f', 'json')}
        assert 'nova-compute on nova-a is forced down in Nova' in str(
            verdicts['nova-a']), verdicts
        cloud.cli('server', 'evacuate', '--host', 'nova-a', '--target-host', 'nova-b',
                  '-f', 'json')
        for name in on_it:
            record = cloud.one('SELECT * FROM migrations WHERE instance = :n ORDER BY id '
                               'DESC LIMIT 1', n=name)
            record = cloud.wait_end(record['id'])
            assert record['migration_type'] == 'evacuate'
            assert record['state'] in ('completed', 'failed'), record['reason']
            if name == 'evac-1':
                assert record['state'] == 'completed', record['reason']
                assert 'forced down in Nova' in record['reason']
        assert cloud.nova_migrations(server)[0]['migration_type'] == 'evacuation'
        cloud.agree('evac-1', server, 'nova-b')
    finally:
        # Started again, it removes what was evacuated from it; then it is lifted.
        cloud.nova.recover_compute('nova-a')
    cloud.wait(lambda: cloud.one("SELECT state FROM hosts WHERE name = 'nova-a'") == {
        'state': 'up'}, 'nova-a up in vmmig again')


def _rows(cloud, query):
    with cloud.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(query)).mappings()]
