"""The room of migrations on their way to a host, on every database we support."""

import time

import pytest

from tests import fixtures as vfix
from vmmig.db import api as db
from vmmig.db import schema
from vmmig.db import states
from vmmig import exception

FACTS = {'memory_mb': 8192, 'memory_mb_used': 0, 'vcpus': 8, 'vcpus_used': 0,
         'disk_gb': 100, 'disk_gb_used': 0}


@pytest.fixture(params=vfix.BACKENDS)
def database(request):
    database = vfix.DatabaseFixture(request.param)
    database.setUp()
    conf = vfix.ConfFixture(database.url, **{'conductor.heartbeat_timeout': 60.0})
    conf.setUp()
    schema.sync()
    for host in ('a', 'b', 'c'):
        db.host_heartbeat(host, FACTS, reported_at=time.time())
    yield
    conf.cleanUp()
    database.cleanUp()


def _create(instance, dest, state=states.QUEUED, memory_mb=1024, vcpus=1, disk_gb=0,
            room_check=None):
    return db.migration_create(dict(
        instance=instance, migration_type='live', storage_mode='ephemeral-shared',
        source_host='a', dest_host=dest, state=state, dest_memory_mb=memory_mb,
        dest_vcpus=vcpus, dest_disk_gb=disk_gb), room_check=room_check)


def test_queued_and_running_migrations_take_room_held_and_ended_ones_do_not(database):
    _create('vm1', 'b')
    running = _create('vm2', 'b', memory_mb=2048, vcpus=2, disk_gb=10)
    db.migration_transition(running['id'], states.QUEUED, states.PREPARING)
    _create('vm3', 'b', state=states.HELD)
    failed = _create('vm4', 'b')
    db.migration_transition(failed['id'], states.QUEUED, states.FAILED)
    _create('vm5', 'c', memory_mb=512)
    assert db.inbound() == {
        'b': {'vcpus': 3, 'memory_mb': 3072, 'disk_gb': 10, 'migrations': 2},
        'c': {'vcpus': 1, 'memory_mb': 512, 'disk_gb': 0, 'migrations': 1}}
    assert list(db.inbound('c')) == ['c']


def test_a_completed_migration_counts_until_its_destination_reports(database):
    migration = _create('vm1', 'b')
    db.migration_transition(migration['id'], states.QUEUED, states.PREPARING)
    db.migration_transition(migration['id'], states.PREPARING, states.RUNNING)
    done = db.migration_complete(migration['id'], (states.RUNNING,), None, 'vm1', 'b',
                                 {'name': 'vm1'})
    assert db.inbound()['b']['memory_mb'] == 1024
    # A report the agent took before the end does not show the VM...
    db.host_alive('b', reported_at=done['finished_at'] - 1)
    assert db.inbound()['b']['migrations'] == 1
    # ...one taken after it does (a light heartbeat too: nothing changed since).
    db.host_alive('b', reported_at=done['finished_at'] + 0.01)
    assert db.inbound() == {}
    # A report overtaken on the way by that one does not bring the room back.
    db.host_heartbeat('b', FACTS, reported_at=done['finished_at'] - 5)
    assert db.inbound() == {}


def test_the_room_check_runs_under_the_lock_with_what_is_on_its_way(database):
    _create('vm1', 'b', memory_mb=3000)
    seen = []

    def room_check(host, inbound):
        seen.append((host['name'], host['facts']['memory_mb'], inbound))
        return 'full' if inbound and inbound['memory_mb'] >= 3000 else None

    before = db.dump()
    with pytest.raises(exception.NoRoom) as err:
        _create('vm2', 'b', room_check=room_check)
    assert err.value.reasons == ['full']
    assert db.dump() == before
    _create('vm3', 'c', room_check=room_check)
    assert seen == [('b', 8192, {'vcpus': 1, 'memory_mb': 3000, 'disk_gb': 0,
                                 'migrations': 1}),
                    ('c', 8192, None)]


def _move(instance, source, dest):
    migration = db.migration_create(dict(
        instance=instance, migration_type='live', storage_mode='ephemeral-shared',
        source_host=source, dest_host=dest, state=states.QUEUED, dest_memory_mb=1024,
        dest_vcpus=1, dest_disk_gb=0))
    db.migration_transition(migration['id'], states.QUEUED, states.PREPARING)
    db.migration_transition(migration['id'], states.PREPARING, states.RUNNING)
    return db.migration_complete(migration['id'], (states.RUNNING,), None, instance, dest,
                                 {'name': instance})


def test_a_completed_migration_counts_while_its_vm_is_there_and_unreported(database):
    """No host reports while vm1 goes a -> b -> c -> a (a reported while it was there)."""
    _move('vm1', 'a', 'b')
    assert db.instance_get('vm1')['host'] == 'b'
    assert db.inbound() == {'b': {'vcpus': 1, 'memory_mb': 1024, 'disk_gb': 0,
                                  'migrations': 1}}
    # It left b again: b's room is free, whatever b's facts say.
    _move('vm1', 'b', 'c')
    assert db.instance_get('vm1')['host'] == 'c'
    assert list(db.inbound()) == ['c']
    # Back on a, whose last report was taken while it was there: its facts show it.
    _move('vm1', 'c', 'a')
    assert db.instance_get('vm1')['host'] == 'a'
    assert db.inbound() == {}
    # c reports after vm1 left it: its facts do not show it, a move there counts again.
    db.host_alive('c', reported_at=time.time())
    _move('vm1', 'a', 'c')
    assert list(db.inbound()) == ['c']
