"""Requests that start at once, requests that queue, and the light heartbeats."""

import threading

import pytest

from tests.unit.semantics import helpers as h
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception

# What an agent's calls carry (vmmig.policies: the service role).
SERVICE = vcontext.new('vmmig-agent', ['service'])


def _two_vms():
    return h.cluster({'vm1': h.vm('a', 'shared'), 'vm2': h.vm('a', 'shared')})


def test_a_request_with_nothing_queued_is_claimed_when_recorded(make_cloud):
    cloud = make_cloud(_two_vms())
    record = cloud.api.migrate_server('vm1', 'live')
    # Claimed in the same transaction that recorded it: never queued.
    assert record['state'] in (states.PREPARING, states.RUNNING, states.COMPLETED)
    assert record['owner'] == cloud.services.conductor.manager.name
    done = cloud.wait_end(record)
    assert done['state'] == 'completed', done['reason']
    assert cloud.hosts_of('vm1') == ['b']


def test_a_request_behind_a_full_conductor_queues_and_starts_later(make_cloud):
    cloud = make_cloud(_two_vms(), **{'conductor.max_concurrent_migrations': 1,
                                      'sim.clock': 'scaled', 'sim.time_scale': 10.0})
    first = cloud.api.migrate_server('vm1', 'live')
    second = cloud.api.migrate_server('vm2', 'live')
    assert second['state'] == states.QUEUED
    assert cloud.wait_end(first)['state'] == 'completed'
    done = cloud.wait_end(second)
    assert done['state'] == 'completed', done['reason']
    # It waited for the first: claimed once the first had ended.
    assert done['started_at'] >= cloud.wait_end(first)['finished_at']


def test_two_requests_for_one_vm_at_once_record_one_migration(make_cloud):
    cloud = make_cloud(_two_vms(), **{'sim.clock': 'scaled', 'sim.time_scale': 1.0})
    barrier = threading.Barrier(4)
    answers = []

    def ask():
        barrier.wait()
        try:
            answers.append(cloud.api.migrate_server('vm1', 'live'))
        except exception.PrecheckFailed as e:
            answers.append(e)
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [a for a in answers if isinstance(a, dict)]
    refusals = [a for a in answers if not isinstance(a, dict)]
    assert len(records) == 1 and len(refusals) == 3, answers
    assert all('already has migration %s' % records[0]['id'] in str(e) for e in refusals)
    assert len(db.migration_list(instance='vm1')) == 1
    assert cloud.wait_end(records[0])['state'] == 'completed'


def test_a_duplicate_record_is_refused_and_changes_nothing(make_cloud):
    cloud = make_cloud(_two_vms())
    values = dict(instance='vm1', migration_type='live', storage_mode='ephemeral-shared',
                  source_host='a', dest_host='b', state=states.HELD, hold_reason='window')
    held = db.migration_create(values, unfinished=(states.HELD, states.QUEUED))
    before = h.stable_dump()
    with pytest.raises(exception.PrecheckFailed) as err:
        db.migration_create(dict(values, state=states.QUEUED),
                            unfinished=(states.HELD, states.QUEUED),
                            claim=cloud.services.conductor.manager.dispatcher.limits())
    assert 'it already has migration %s, which is held' % held['id'] in str(err.value)
    assert h.stable_dump() == before


class TestHeartbeats:
    def test_an_unchanged_host_sends_light_heartbeats(self, make_cloud):
        cloud = make_cloud(_two_vms(), **{'agent.heartbeat_interval': 3600.0,
                                          'agent.full_report_interval': 3600.0})
        manager = cloud.agent('a').manager
        before = db.host_get('a')
        assert manager.heartbeat() is False
        h.wait_for(lambda: db.host_get('a')['last_heartbeat'] > before['last_heartbeat'], 10,
                   'the light heartbeat to reach the database')
        after = db.host_get('a')
        # Alive, and nothing else written: the time of the last change stays.
        assert after['state'] == 'up'
        assert after['updated_at'] == before['updated_at']
        assert after['facts'] == before['facts']

    def test_a_change_is_reported_with_the_next_heartbeat(self, make_cloud):
        cloud = make_cloud(_two_vms(), **{'agent.heartbeat_interval': 3600.0,
                                          'agent.full_report_interval': 3600.0})
        agent = cloud.agent('a')
        agent.driver.suspend('vm2')
        assert agent.manager.heartbeat() is True
        h.wait_for(lambda: db.instance_get('vm2')['power_state'] == 'suspended', 10,
                   'the suspended VM to be reported')

    def test_a_down_host_comes_back_up_with_a_light_heartbeat(self, make_cloud):
        cloud = make_cloud(_two_vms(), **{'agent.heartbeat_interval': 3600.0,
                                          'agent.full_report_interval': 3600.0})
        manager = cloud.agent('b').manager
        db.hosts_mark_down(-1.0)
        assert db.host_get('b')['state'] == 'down'
        assert manager.heartbeat() is False
        h.wait_for(lambda: db.host_get('b')['state'] == 'up', 10, 'host b to be up again')

    def test_full_reports_come_at_their_interval_even_unchanged(self, make_cloud):
        cloud = make_cloud(_two_vms(), **{'agent.heartbeat_interval': 3600.0,
                                          'agent.full_report_interval': 0.0})
        manager = cloud.agent('a').manager
        assert manager.heartbeat() is True
        assert manager.heartbeat() is True


def test_the_conductor_does_not_adopt_what_it_is_starting(make_cloud):
    """Housekeeping that looks at the active migrations in the moment between the record
    (claimed) and its hand-over to a worker must not take it for an orphan."""
    cloud = make_cloud(_two_vms())
    dispatcher = cloud.services.conductor.manager.dispatcher
    adopted = []
    real_recover, real_run_claimed = dispatcher._recover, dispatcher.run_claimed
    dispatcher._recover = lambda migration: adopted.append(migration['id']) or \
        real_recover(migration)

    def late_hand_over(migration, plan):
        dispatcher.adopt()
        real_run_claimed(migration, plan)
    dispatcher.run_claimed = late_hand_over
    record = cloud.api.migrate_server('vm1', 'live')
    done = cloud.wait_end(record)
    assert adopted == []
    assert done['state'] == 'completed', done['reason']
    assert cloud.hosts_of('vm1') == ['b']


def test_the_progress_limiter_forgets_migrations_it_no_longer_limits(make_cloud):
    # Agents send no last report that would remove a migration's entry: entries older
    # than the interval (0 here) go, instead of piling up for every migration ever run.
    cloud = make_cloud(_two_vms())
    manager = cloud.services.conductor.manager
    for migration_id in range(1, 51):
        manager.migration_progress(SERVICE, migration_id, {'type': 2, 'data_remaining': 1})
    assert len(manager._progress_at) <= 1
