"""The nova backend's state machine through the real conductor (embedded, SQLite) with
an in-memory Nova (fake_nova): discovery into the records, each move asked of Nova and
followed, refusals as reasons, reconciliation. The same paths against real Nova:
tests/functional/test_nova_backend.py."""

import time

import pytest

from tests import fixtures as vfix
from tests.unit.nova import fake_nova
from tests.unit.semantics import helpers as h
from vmmig.backends.nova import client
from vmmig.conductor import rpcapi
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig.db import states
from vmmig import exception
from vmmig import plugins


@pytest.fixture
def nova(monkeypatch):
    fake = fake_nova.FakeNova()
    monkeypatch.setattr(client, 'Nova', lambda: fake)
    return fake


@pytest.fixture
def cloud(nova):
    """``cloud(**conf overrides)``: the conductor on the nova backend, its API."""
    started = []

    def start(**overrides):
        conf = {'drivers.backend': 'nova', 'nova.sync_interval': 0.1,
                'nova.poll_interval': 0.05, 'ha.enabled': False}
        conf.update(overrides)
        fixture = vfix.EmbeddedFixture(**conf)
        fixture.setUp()
        started.append(fixture)
        return rpcapi.ConductorAPI(context=h.as_role('admin'))

    yield start
    for fixture in reversed(started):
        fixture.cleanUp()


def _end(api, migration, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        record = api.migration_get(migration['id'])
        if record['state'] in states.TERMINAL:
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.02)


def _until(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _agrees(nova, name, host, power_state='running'):
    """vmmig's instance record says what Nova's server says."""
    server = nova.vms['uuid-%s' % name]
    assert server['OS-EXT-SRV-ATTR:host'] == host
    row = db.instance_get(name)
    assert (row['host'], row['power_state']) == (host, power_state)


def test_the_default_backend_is_the_agents_and_a_wrong_name_is_named():
    assert plugins.installed(plugins.BACKENDS) == ('agents', 'nova')
    with pytest.raises(exception.DriverNotFound) as err:
        plugins.load_class(plugins.BACKENDS, 'nvoa', '[drivers] backend')
    assert '[drivers] backend' in str(err.value) and 'agents, nova' in str(err.value)


def test_discovery_fills_hosts_and_instances(nova, cloud):
    nova.boot('web-1', 'compute1')
    nova.boot('off-1', 'compute2', vm_state='stopped')
    nova.services['compute3'].update(forced_down=True)
    api = cloud()
    hosts = {x['name']: x for x in api.host_list()}
    assert {n: x['state'] for n, x in hosts.items()} == {
        'compute1': 'up', 'compute2': 'up', 'compute3': 'down'}
    assert hosts['compute1']['facts']['memory_mb'] == 8192
    instances = {i['name']: i for i in api.instance_list()}
    assert {n: (i['host'], i['power_state']) for n, i in instances.items()} == {
        'web-1': ('compute1', 'running'), 'off-1': ('compute2', 'shutoff')}
    assert instances['web-1']['spec']['uuid'] == 'uuid-web-1'
    # Eligible hosts with reasons, on what Nova reports.
    verdicts = {v['host']: v for v in api.host_eligible('web-1', 'live')}
    assert verdicts['compute2']['eligible']
    assert verdicts['compute3']['reasons'] == [
        'host compute3 is down (nova-compute on compute3 is forced down in Nova)']
    assert 'already' in verdicts['compute1']['reasons'][0]


def test_live_migration_without_a_host_goes_where_novas_scheduler_puts_it(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    record = _end(api, api.migrate_server('web-1', 'live'))
    assert record['state'] == 'completed', record['reason']
    # Nova chose; the record says where it went, and so does the instance record.
    assert record['dest_host'] == nova.vms['uuid-web-1']['OS-EXT-SRV-ATTR:host']
    assert record['requested_host'] is None
    _agrees(nova, 'web-1', record['dest_host'])
    # Progress from the server-migrations API reached the record.
    assert record['bytes_total'] == 123456 + 234567


def test_live_migration_to_a_host(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    record = _end(api, api.migrate_server('web-1', 'live', host='compute3'))
    assert (record['state'], record['dest_host'], record['vm_location']) == (
        'completed', 'compute3', 'compute3')
    _agrees(nova, 'web-1', 'compute3')


def test_abort_of_a_running_live_migration_keeps_it_on_its_host(nova, cloud):
    nova.boot('web-1', 'compute1')
    nova.live_steps = 10 ** 6
    api = cloud()
    migration = api.migrate_server('web-1', 'live', host='compute2')
    _until(lambda: api.migration_get(migration['id'])['state'] == 'running'
           and any(m['status'] == 'running' for m in nova.migrations_), 'running')
    api.migration_abort(migration['id'])
    record = _end(api, migration)
    assert record['state'] == 'cancelled', record['reason']
    assert 'abort' in nova.calls
    assert record['vm_location'].startswith('compute1')
    _agrees(nova, 'web-1', 'compute1')


def test_force_complete_of_a_running_live_migration(nova, cloud):
    nova.boot('web-1', 'compute1')
    nova.live_steps = 10 ** 6
    api = cloud()
    migration = api.migrate_server('web-1', 'live', host='compute2')
    _until(lambda: api.migration_get(migration['id'])['state'] == 'running', 'running')
    api.migration_force_complete(migration['id'])
    record = _end(api, migration)
    assert record['state'] == 'completed', record['reason']
    assert 'force_complete' in nova.calls
    _agrees(nova, 'web-1', 'compute2')


def test_cold_migration_is_confirmed(nova, cloud):
    nova.boot('off-1', 'compute1', vm_state='stopped')
    nova.boot('web-1', 'compute2')
    api = cloud()
    record = _end(api, api.migrate_server('off-1', 'cold', host='compute3'))
    assert record['state'] == 'completed', record['reason']
    assert 'confirm_resize' in nova.calls
    _agrees(nova, 'off-1', 'compute3', 'shutoff')
    # A running VM: Nova shuts it down, moves it and starts it again.
    record = _end(api, api.migrate_server('web-1', 'cold', options={'shutdown': True}))
    assert record['state'] == 'completed', record['reason']
    _agrees(nova, 'web-1', record['dest_host'], 'running')


def test_evacuation_of_a_forced_down_host(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud(**{'drivers.fencing': 'nova', 'nova.shared_instances_storage': True})
    # Up: no evacuation; the refusal says why and records nothing.
    with pytest.raises(exception.PrecheckFailed) as err:
        api.evacuate_host('compute1')
    assert 'is up' in str(err.value)
    assert api.migration_list() == []
    nova.services['compute1'].update(state='down', forced_down=True)
    _until(lambda: db.host_get('compute1')['state'] == 'down', 'compute1 down')
    [migration] = api.evacuate_host('compute1', target_host='compute2')
    record = _end(api, migration)
    assert record['state'] == 'completed', record['reason']
    assert 'forced down in Nova' in record['reason']
    _agrees(nova, 'web-1', 'compute2')


def test_evacuation_forces_the_service_down_once_fenced(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud(**{'drivers.fencing': 'heartbeat', 'conductor.fencing_grace': 0.0,
                   'nova.shared_instances_storage': True})
    nova.services['compute1'].update(state='down')
    _until(lambda: db.host_get('compute1')['state'] == 'down', 'compute1 down')
    [migration] = api.evacuate_host('compute1')
    record = _end(api, migration)
    assert record['state'] == 'completed', record['reason']
    assert nova.services['compute1']['forced_down'] is True
    assert 'nova-compute on compute1 forced down in Nova' in record['reason']


def test_local_disks_are_not_evacuated(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud(**{'drivers.fencing': 'nova'})
    nova.services['compute1'].update(state='down', forced_down=True)
    _until(lambda: db.host_get('compute1')['state'] == 'down', 'compute1 down')
    with pytest.raises(exception.PrecheckFailed) as err:
        api.evacuate_host('compute1')
    assert 'local storage of the failed host' in str(err.value)
    assert api.migration_list() == []


def test_a_server_busy_in_nova_is_refused_before_anything_is_recorded(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    # Busy in Nova (a task vmmig did not start): Nova refuses with a 409.
    nova.vms['uuid-web-1']['OS-EXT-STS:task_state'] = 'rebuilding'
    nova.vms['uuid-web-1']['OS-EXT-STS:vm_state'] = 'building'
    # vmmig's own check sees Nova's state first: refused before anything is recorded.
    with pytest.raises(exception.PrecheckFailed) as err:
        api.migrate_server('web-1', 'live', host='compute2')
    assert 'web-1 is building' in str(err.value)
    assert api.migration_list() == []


def test_a_refusal_after_vmmigs_checks_ends_the_record_failed(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    original = nova.live_migrate

    def busy_meanwhile(uuid, host, instance):
        nova.vms[uuid]['OS-EXT-STS:task_state'] = 'migrating'
        return original(uuid, host, instance)

    nova.live_migrate = busy_meanwhile
    record = _end(api, api.migrate_server('web-1', 'live', host='compute2'))
    assert record['state'] == 'failed'
    assert record['reason'].startswith("Nova refused to live-migrate web-1: "
                                       "Cannot 'os-migrateLive'")
    assert record['vm_location'].startswith('compute1')
    _agrees(nova, 'web-1', 'compute1')


def test_no_valid_host_after_nova_accepted(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    nova.fail_next = 'No valid host was found. There are not enough hosts available.'
    record = _end(api, api.migrate_server('web-1', 'live'))
    assert record['state'] == 'failed'
    assert 'No valid host was found' in record['reason']
    assert 'conductor_live_migrate_instance' in record['reason']
    _agrees(nova, 'web-1', 'compute1')


def test_unreachable_nova_is_named_and_records_nothing(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    nova.unreachable = True
    for name in ('web-1', 'not-seen-yet'):
        with pytest.raises(exception.NovaUnavailable) as err:
            api.migrate_server(name, 'live')
        assert 'Nova cannot be reached' in str(err.value)
    assert api.migration_list() == []
    # Silence of Nova marks no host down (only Nova says which are).
    time.sleep(0.3)
    assert {x['state'] for x in api.host_list()} == {'up'}


def test_a_server_nova_does_not_know(nova, cloud):
    nova.boot('web-1', 'compute1')
    # Discovered at the start only, and when a request names what it has not seen.
    api = cloud(**{'nova.sync_interval': 3600})
    with pytest.raises(exception.ServerNotInNova) as err:
        api.migrate_server('ghost', 'live')
    assert 'Nova knows no server ghost' in str(err.value)
    # One booted since the last discovery is found by the request.
    nova.boot('new-1', 'compute2')
    record = _end(api, api.migrate_server('new-1', 'live'))
    assert record['state'] == 'completed', record['reason']
    # Deleted in Nova since the last discovery.
    del nova.vms['uuid-web-1']
    with pytest.raises(exception.ServerNotInNova) as err:
        api.migrate_server('web-1', 'live')
    assert 'Nova knows no server uuid-web-1 (instance web-1)' in str(err.value)
    assert api.migration_list(instance='web-1') == []


def test_held_migration_resumed(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    held = api.migrate_server('web-1', 'live', hold_reason='change window')
    time.sleep(0.3)
    assert api.migration_get(held['id'])['state'] == 'held'
    assert 'live_migrate' not in nova.calls
    api.migration_resume(held['id'])
    record = _end(api, held)
    assert record['state'] == 'completed', record['reason']
    _agrees(nova, 'web-1', record['dest_host'])


def test_moves_behind_vmmigs_back_are_reconciled(nova, cloud):
    nova.boot('web-1', 'compute1')
    nova.boot('web-2', 'compute1')
    nova.live_steps = 10 ** 6
    api = cloud()
    # Moved in Nova without vmmig: the next discovery records it there.
    nova.vms['uuid-web-1']['OS-EXT-SRV-ATTR:host'] = 'compute3'
    _until(lambda: db.instance_get('web-1')['host'] == 'compute3', 'web-1 on compute3')
    # A live migration Nova cancels without vmmig asking: failed, and it says so.
    migration = api.migrate_server('web-2', 'live', host='compute2')
    _until(lambda: any(m['status'] == 'running' for m in nova.migrations_), 'running')
    nova.migrations_[-1]['abort'] = True
    record = _end(api, migration)
    assert record['state'] == 'failed'
    assert 'without vmmig asking' in record['reason']
    _agrees(nova, 'web-2', 'compute1')


@pytest.mark.parametrize('nova_ended', ['completed', 'error', 'none'])
def test_a_migration_whose_conductor_stopped_ends_as_nova_ended_it(nova, cloud, nova_ended):
    """A conductor died while Nova moved the VM; another adopts the record and ends it
    as Nova shows it, saying so."""
    uuid = nova.boot('web-1', 'compute1')
    api = cloud()
    held = api.migrate_server('web-1', 'live', host='compute2', hold_reason='set up')
    if nova_ended != 'none':
        # What Nova did while nobody followed it.
        nova._start(uuid, 'compute2', 'live-migration', 'live-migration', 'migrating',
                    'running')
        migration = nova.migrations_[-1]
        if nova_ended == 'completed':
            migration['force'] = True
        else:
            migration['fail'] = 'Migration pre-check error: the destination is gone'
    # Running in the records, owned by a conductor that no longer beats.
    assert db.migration_update(held['id'], expected=('held',), state='running',
                               owner='conductor-gone', started_at=time.time())
    record = _end(api, held)
    assert record['reason'].startswith('the conductor stopped during the migration')
    if nova_ended == 'completed':
        assert record['state'] == 'completed'
        assert 'completed in Nova' in record['reason']
        _agrees(nova, 'web-1', 'compute2')
    elif nova_ended == 'error':
        assert record['state'] == 'failed'
        assert 'the destination is gone' in record['reason']
        _agrees(nova, 'web-1', 'compute1')
    else:
        assert record['state'] == 'failed'
        assert 'Nova shows no live-migration of it from compute1' in record['reason']
        _agrees(nova, 'web-1', 'compute1')


def test_nova_silent_for_a_while_during_a_migration(nova, cloud):
    nova.boot('web-1', 'compute1')
    nova.boot('web-2', 'compute1')
    nova.live_steps = 20
    api = cloud(**{'nova.operation_timeout': 3})
    migration = api.migrate_server('web-1', 'live', host='compute2')
    _until(lambda: any(m['status'] == 'running' for m in nova.migrations_), 'running')
    nova.unreachable = True
    time.sleep(0.5)
    assert api.migration_get(migration['id'])['state'] == 'running'
    nova.unreachable = False
    record = _end(api, migration)
    # Nova went on; so did vmmig once it answered again.
    assert record['state'] == 'completed', record['reason']
    _agrees(nova, 'web-1', 'compute2')
    # Silent past [nova] operation_timeout: the record says nobody knows where it is.
    nova.live_steps = 10 ** 6
    migration = api.migrate_server('web-2', 'live', host='compute2')
    _until(lambda: api.migration_get(migration['id'])['state'] == 'running', 'running')
    nova.unreachable = True
    record = _end(api, migration)
    nova.unreachable = False
    assert record['state'] == 'error'
    assert 'Nova did not answer within [nova] operation_timeout (3 s)' in record['reason']
    assert record['vm_location'] == 'unknown: ask Nova (last seen on compute1)'


def _service(nova, host):
    return (nova.services[host]['status'], nova.services[host]['disabled_reason'])


def _drained(api, host, reason):
    api.host_maintenance_set(host, reason)
    _until(lambda: plans_db.plan_list(host=host)[-1]['state'] == 'succeeded',
           'the drain of %s' % host, 20)


def test_maintenance_disables_the_service_in_nova_until_lifted(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = cloud()
    _drained(api, 'compute1', 'new DIMMs')
    _agrees(nova, 'web-1', nova.vms['uuid-web-1']['OS-EXT-SRV-ATTR:host'])
    # Told at once, not at the next discovery.
    assert _service(nova, 'compute1') == ('disabled', 'vmmig maintenance: new DIMMs')
    assert _service(nova, 'compute2') == ('enabled', None)
    api.host_maintenance_unset('compute1')
    assert _service(nova, 'compute1') == ('enabled', None)
    # The facts of the same discovery show it: a destination again at once.
    verdicts = {v['host']: v for v in api.host_eligible('web-1', 'live')}
    assert verdicts['compute1']['eligible'], verdicts['compute1']
    assert nova.calls.count('disable compute1') == 1
    assert nova.calls.count('enable compute1') == 1


def test_a_service_an_operator_disabled_in_nova_is_left_as_it_is(nova, cloud):
    nova.services['compute2'].update(status='disabled', disabled_reason='rack 4 rewiring')
    nova.services['compute3'].update(status='disabled', disabled_reason=None)
    api = cloud()
    _drained(api, 'compute2', 'firmware')
    api.host_maintenance_unset('compute2')
    time.sleep(0.3)
    assert _service(nova, 'compute2') == ('disabled', 'rack 4 rewiring')
    assert _service(nova, 'compute3') == ('disabled', None)
    assert not [c for c in nova.calls if c.startswith(('disable', 'enable'))]
    hosts = {x['name']: x for x in api.host_list()}
    assert hosts['compute2']['facts']['unavailable'] == (
        'nova-compute on compute2 is disabled in Nova: rack 4 rewiring')


def test_nova_unreachable_at_maintenance_is_told_by_a_later_discovery(nova, cloud):
    api = cloud()
    nova.unreachable = True
    # vmmig's records are the truth: the maintenance holds without Nova.
    _drained(api, 'compute1', 'new fans')
    assert db.host_get('compute1')['maintenance']
    assert _service(nova, 'compute1') == ('enabled', None)
    nova.unreachable = False
    _until(lambda: _service(nova, 'compute1')[0] == 'disabled', 'compute1 disabled')
    assert _service(nova, 'compute1') == ('disabled', 'vmmig maintenance: new fans')
    nova.unreachable = True
    api.host_maintenance_unset('compute1')
    assert not db.host_get('compute1')['maintenance']
    nova.unreachable = False
    _until(lambda: _service(nova, 'compute1')[0] == 'enabled', 'compute1 enabled')


def test_a_refusal_by_nova_leaves_the_other_services_told(nova, cloud):
    api = cloud()
    nova.refuse_service_change.add('compute1')
    api.host_maintenance_set('compute1', 'a')
    api.host_maintenance_set('compute2', 'b')
    _until(lambda: _service(nova, 'compute2')[0] == 'disabled', 'compute2 disabled')
    assert _service(nova, 'compute1') == ('enabled', None)
    # Asked again at each discovery, and told once Nova takes it.
    _until(lambda: nova.calls.count('disable compute1') >= 3, 'compute1 asked again')
    nova.refuse_service_change.clear()
    _until(lambda: _service(nova, 'compute1')[0] == 'disabled', 'compute1 disabled')


def test_no_service_changed_when_told_not_to(nova, cloud):
    api = cloud(**{'nova.disable_in_maintenance': False})
    _drained(api, 'compute1', 'new DIMMs')
    time.sleep(0.3)
    assert _service(nova, 'compute1') == ('enabled', None)
    api.host_maintenance_unset('compute1')
    assert not [c for c in nova.calls if c.startswith(('disable', 'enable'))]


def _recovery_of(host):
    plans = plans_db.plan_list(host=host, strategy='evacuate', with_actions=True)
    return plans[-1] if plans else None


def _ha(cloud):
    return cloud(**{'drivers.fencing': 'nova', 'ha.enabled': True,
                    'ha.monitor_interval': 0.05, 'conductor.heartbeat_timeout': 0.2,
                    'nova.shared_instances_storage': True})


def test_ha_monitor_evacuates_a_host_forced_down_in_nova(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = _ha(cloud)
    _until(lambda: db.instance_get('web-1')['host'] == 'compute1', 'web-1 seen')
    # An outside fencer forced it down: no vmmig command.
    nova.services['compute1'].update(state='down', forced_down=True)
    _until(lambda: (_recovery_of('compute1') or {}).get('state') == 'succeeded',
           'the recovery of compute1 succeeds', 20)
    plan = _recovery_of('compute1')
    assert 'fenced: nova-compute on compute1 is forced down in Nova' in plan['reason'], plan
    # Fenced: disabled in Nova too (as Masakari does) until an operator lifts it.
    status, reason = _service(nova, 'compute1')
    assert status == 'disabled' and reason.startswith('vmmig maintenance: HA: fenced: '), \
        reason
    [migration] = api.migration_list()
    assert migration['migration_type'] == 'evacuate' and migration['state'] == 'completed'
    assert migration['requested_by'] == 'ha-monitor'
    _agrees(nova, 'web-1', 'compute2')


def test_ha_monitor_leaves_a_host_down_but_not_forced_down_and_says_why(nova, cloud):
    nova.boot('web-1', 'compute1')
    api = _ha(cloud)
    _until(lambda: db.instance_get('web-1')['host'] == 'compute1', 'web-1 seen')
    nova.services['compute1'].update(state='down')
    _until(lambda: _recovery_of('compute1'), 'the report of compute1', 20)
    plan = _recovery_of('compute1')
    assert plan['state'] == 'failed', plan
    assert 'down but not forced down in Nova' in plan['reason'], plan
    assert {a['state'] for a in plan['actions']} == {'stays'}
    time.sleep(0.5)
    assert api.migration_list() == []
    assert nova.services['compute1']['forced_down'] is False
    _agrees(nova, 'web-1', 'compute1')
    # Forced down later: the failure has its plan and the host is in maintenance, so
    # the monitor starts nothing; an operator's evacuation moves the server.
    nova.services['compute1'].update(forced_down=True)
    _until(lambda: db.host_get('compute1')['facts']['nova']['forced_down'], 'forced down')
    time.sleep(0.5)
    assert api.migration_list() == []
    assert len(plans_db.plan_list(host='compute1', strategy='evacuate')) == 1
    [migration] = api.evacuate_host('compute1', target_host='compute2')
    assert _end(api, migration)['state'] == 'completed'
    _agrees(nova, 'web-1', 'compute2')
