"""The test tooling's real Nova moves servers as Nova does (tests/openstack/nova.py).

This is the environment's self-test, with python-novaclient only: vmmig's Nova backend
has its own tests.
"""

import time

from novaclient import api_versions
from novaclient import exceptions as nova_exc
import pytest
import requests

pytestmark = pytest.mark.services

HOST = 'OS-EXT-SRV-ATTR:host'


def _host(nova, server_id):
    return getattr(nova.servers.get(server_id), HOST)


def _wait_migration(nova, server_id, statuses, timeout=10):
    """The server's in-progress migration once its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        migrations = nova.server_migrations.list(server_id)
        seen = [m.status for m in migrations]
        for migration in migrations:
            if migration.status in statuses:
                return migration
        time.sleep(0.1)
    raise AssertionError('no %s migration of %s in %ss (saw %s)'
                         % (statuses, server_id, timeout, seen))


def _last_migration(nova, server_id, status=None, timeout=10):
    """The server's latest migration record, once its status is ``status``.

    Nova shows the server ACTIVE on its new host a moment before the source compute
    marks the migration completed.
    """
    deadline = time.monotonic() + timeout
    while True:
        migration = max(nova.migrations.list(instance_uuid=server_id), key=lambda m: m.id)
        if status in (None, migration.status) or time.monotonic() > deadline:
            return migration
        time.sleep(0.2)


def _servers(nova):
    return {s.id for s in nova.servers.list(search_opts={'all_tenants': True})}


@pytest.fixture(autouse=True)
def servers_deleted(nova_cloud):
    """Delete what a test booted: the session's Nova is shared with vmmig's tests."""
    nova = nova_cloud.client()
    before = _servers(nova)
    yield
    left = _servers(nova) - before
    for server_id in left:
        nova.servers.delete(server_id)
    deadline = time.monotonic() + 60
    while left & _servers(nova):
        assert time.monotonic() < deadline, 'servers %s not deleted' % (left & _servers(nova))
        time.sleep(0.5)


def test_boot_on_each_host_asked(nova_cloud):
    nova = nova_cloud.client()
    assert nova_cloud.compute_hosts == ['nova-a', 'nova-b', 'nova-live']
    hypervisors = {h.hypervisor_hostname: h.state for h in nova.hypervisors.list()}
    assert hypervisors == {'nova-a': 'up', 'nova-b': 'up', 'nova-live': 'up'}
    server = nova_cloud.boot('env-boot', host='nova-b')
    assert _host(nova, server) == 'nova-b'


def test_nova_and_placement_ask_keystone(nova_cloud):
    assert nova_cloud.keystone is not None
    for url in (nova_cloud.api_url + '/v2.1/servers',
                nova_cloud.placement_url + '/resource_providers'):
        assert requests.get(url, timeout=10).status_code == 401, url
        assert requests.get(url, headers={'X-Auth-Token': 'forged'},
                            timeout=10).status_code == 401, url
    # A member of the project may not see the hypervisors; its admin may.
    with pytest.raises(nova_exc.Forbidden):
        nova_cloud.client('vmmig-member').hypervisors.list()


def test_live_migration_to_a_host_finishes_at_once(nova_cloud):
    nova = nova_cloud.client()
    server = nova_cloud.boot('env-live', host='nova-a')
    nova.servers.live_migrate(server, 'nova-b', 'auto')
    nova_cloud.wait_server(server, 'ACTIVE', client=nova)
    assert _host(nova, server) == 'nova-b'
    migration = _last_migration(nova, server, 'completed')
    assert (migration.migration_type, migration.status) == ('live-migration', 'completed')
    assert (migration.source_compute, migration.dest_compute) == ('nova-a', 'nova-b')


def test_running_live_migration_force_completed(nova_cloud):
    nova = nova_cloud.client()
    server = nova_cloud.boot('env-force', host='nova-live')
    nova.servers.live_migrate(server, 'nova-a', 'auto')
    migration = _wait_migration(nova, server, ('running',))
    assert (migration.source_compute, migration.dest_compute) == ('nova-live', 'nova-a')
    nova.server_migrations.live_migrate_force_complete(server, migration.id)
    nova_cloud.wait_server(server, 'ACTIVE', client=nova)
    assert _host(nova, server) == 'nova-a'
    assert _last_migration(nova, server, 'completed').status == 'completed'


def test_running_live_migration_aborted(nova_cloud):
    nova = nova_cloud.client()
    server = nova_cloud.boot('env-abort', host='nova-live')
    nova.servers.live_migrate(server, 'nova-b', 'auto')
    migration = _wait_migration(nova, server, ('running',))
    nova.server_migrations.live_migration_abort(server, migration.id)
    nova_cloud.wait_server(server, 'ACTIVE', client=nova)
    assert _host(nova, server) == 'nova-live'
    assert _last_migration(nova, server, 'cancelled').status == 'cancelled'
    # Nothing left to abort or force.
    assert nova.server_migrations.list(server) == []
    with pytest.raises(nova_exc.ClientException):
        nova.server_migrations.live_migrate_force_complete(server, migration.id)


def test_cold_migration_confirmed(nova_cloud):
    nova = nova_cloud.client()
    server = nova_cloud.boot('env-cold', host='nova-a')
    nova.servers.migrate(server, host='nova-b')
    nova_cloud.wait_server(server, 'VERIFY_RESIZE', client=nova)
    assert _host(nova, server) == 'nova-b'
    nova.servers.confirm_resize(server)
    nova_cloud.wait_server(server, 'ACTIVE', client=nova)
    assert _host(nova, server) == 'nova-b'
    migration = _last_migration(nova, server, 'confirmed')
    assert (migration.migration_type, migration.status) == ('migration', 'confirmed')


def test_evacuate_after_compute_killed_and_forced_down(nova_cloud):
    nova = nova_cloud.client()
    assert nova.api_version >= api_versions.APIVersion('2.95')
    server = nova_cloud.boot('env-evacuate', host='nova-b')
    # Nova refuses to evacuate from a compute it still believes up.
    with pytest.raises(nova_exc.BadRequest):
        nova.servers.evacuate(server, host='nova-a')
    nova_cloud.kill_compute('nova-b')
    nova_cloud.force_down('nova-b')
    try:
        service = nova.services.list(host='nova-b', binary='nova-compute')[0]
        assert (service.state, service.forced_down) == ('down', True)
        nova.servers.evacuate(server, host='nova-a')
        # Since microversion 2.95 Nova leaves an evacuated server stopped.
        nova_cloud.wait_server(server, 'SHUTOFF', client=nova)
        assert _host(nova, server) == 'nova-a'
        nova.servers.start(server)
        nova_cloud.wait_server(server, 'ACTIVE', client=nova)
        assert _last_migration(nova, server).migration_type == 'evacuation'
    finally:
        nova_cloud.recover_compute('nova-b')
    service = nova.services.list(host='nova-b', binary='nova-compute')[0]
    assert (service.state, service.forced_down) == ('up', False)
    assert _last_migration(nova, server, 'completed').status == 'completed'
    assert _host(nova, server) == 'nova-a'


def test_stand_ins_knew_every_call_nova_made(nova_cloud):
    assert nova_cloud.glance.requests, 'Nova never asked the Glance stand-in'
    assert nova_cloud.glance.unknown == []
    assert nova_cloud.neutron.unknown == []
