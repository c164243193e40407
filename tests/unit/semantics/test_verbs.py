"""hold, resume, abort, force-complete: each from a state that allows it and one that does not.

A migration is caught in ``running`` with a guest that dirties memory faster than
its 1 Gbit/s link (pre-copy never converges by itself) on the scaled clock, and in
``queued`` behind it with a limit of one migration at a time.
"""

import os
import time

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception

GiB = 1024 ** 3

# Modelled seconds per real second: a 1 GiB pre-copy round over 1 Gbit/s takes 8.6
# modelled seconds, under a second of the test's time.
SCALED = {'sim.clock': 'scaled', 'sim.time_scale': 10.0}


def _cluster(**extra_instances):
    instances = {
        'hot': h.vm('a', 'shared', memory_mb=1024, workload=h.HOT),
        'idle': h.vm('a', 'shared', memory_mb=512),
        'off': h.vm('a', 'local', power_state='shutoff'),
    }
    instances.update(extra_instances)
    return h.cluster(instances, a=h.SLOW_LINK, b=h.SLOW_LINK)


def _refused(call, state):
    with pytest.raises(exception.InvalidState) as err:
        call()
    assert 'while it is %s' % state in str(err.value)
    return err.value


@pytest.fixture
def busy(make_cloud):
    """One live migration that runs until told otherwise; everything else queues behind it."""
    cloud = make_cloud(_cluster(), **dict(SCALED, **{'conductor.max_concurrent_migrations': 1}))
    running = cloud.api.migrate_server('hot', 'live', options={'post_copy': True})
    cloud.wait_state(running, 'running')
    cloud.running = running
    return cloud


class TestHoldResume:
    def test_hold_and_resume_a_queued_migration(self, busy):
        api = busy.api
        queued = api.migrate_server('idle', 'live')
        assert api.migration_get(queued['id'])['state'] == 'queued'
        held = h.api_as('alice').migration_hold(queued['id'], 'change freeze')
        assert (held['state'], held['hold_reason'], held['held_by']) == \
            ('held', 'change freeze', 'alice')
        _refused(lambda: api.migration_hold(queued['id'], 'again'), 'held')
        _refused(lambda: api.migration_force_complete(queued['id']), 'held')
        resumed = h.api_as('alice').migration_resume(queued['id'])
        assert resumed['state'] == 'queued'
        _refused(lambda: api.migration_resume(queued['id']), 'queued')
        _refused(lambda: api.migration_force_complete(queued['id']), 'queued')
        # The slot frees up: the resumed migration runs and completes.
        api.migration_abort(busy.running['id'])
        assert busy.wait_end(queued)['state'] == 'completed'
        assert busy.hosts_of('idle') == ['b']

    def test_held_at_submission_never_starts(self, make_cloud):
        cloud = make_cloud(_cluster())
        held = h.api_as('bob').migrate_server('idle', 'live',
                                              hold_reason='wait for the window')
        assert (held['state'], held['hold_reason'], held['held_by']) == \
            ('held', 'wait for the window', 'bob')
        assert cloud.services.wait_idle(timeout=10)
        assert cloud.api.migration_get(held['id'])['state'] == 'held'
        assert cloud.hosts_of('idle') == ['a']
        cloud.api.migration_resume(held['id'])
        done = cloud.wait_end(held)
        # Completed: nothing in its reason speaks of a hold; the hold is kept as history.
        assert done['state'] == 'completed'
        assert 'held' not in (done['reason'] or '')
        assert (done['hold_reason'], done['held_by']) == ('wait for the window', 'bob')
        assert cloud.hosts_of('idle') == ['b']
        assert cloud.on('b', 'idle')['power_state'] == 'running'
        assert db.instance_get('idle')['host'] == 'b'

    def test_hold_needs_a_reason(self, busy):
        queued = busy.api.migrate_server('idle', 'live')
        before = h.stable_dump()
        with pytest.raises(exception.Invalid) as err:
            busy.api.migration_hold(queued['id'], '')
        assert 'reason' in str(err.value)
        assert h.stable_dump() == before

    def test_held_survives_a_restart(self, make_cloud):
        cloud = make_cloud(_cluster())
        held = h.api_as('carol').migrate_server('idle', 'live', hold_reason='overnight')
        cloud.restart_services()
        assert cloud.services.wait_idle(timeout=10)
        record = cloud.api.migration_get(held['id'])
        assert (record['state'], record['hold_reason'], record['held_by']) == \
            ('held', 'overnight', 'carol')
        assert cloud.hosts_of('idle') == ['a']
        cloud.api.migration_resume(held['id'])
        assert cloud.wait_end(held)['state'] == 'completed'
        assert cloud.hosts_of('idle') == ['b']

    def test_hold_and_resume_refused_while_running(self, busy):
        _refused(lambda: busy.api.migration_hold(busy.running['id'], 'too late'), 'running')
        _refused(lambda: busy.api.migration_resume(busy.running['id']), 'running')
        busy.api.migration_abort(busy.running['id'])


class TestAbort:
    @pytest.mark.parametrize('hold', [False, True])
    def test_abort_before_it_starts(self, busy, hold):
        queued = busy.api.migrate_server('idle', 'live', hold_reason='x' if hold else None)
        record = h.api_as('dave').migration_abort(queued['id'])
        assert record['state'] == 'cancelled'
        assert record['vm_location'] == 'a' and 'dave' in record['reason']
        busy.api.migration_abort(busy.running['id'])
        busy.wait_end(busy.running)
        assert busy.hosts_of('idle') == ['a']
        assert busy.api.migration_get(queued['id'])['state'] == 'cancelled'

    def test_abort_while_running_leaves_the_vm_on_the_source(self, busy):
        record = h.api_as('erin').migration_abort(busy.running['id'])
        assert record['abort_requested']
        record = busy.wait_end(busy.running)
        assert record['state'] == 'cancelled'
        assert record['vm_location'] == 'a' and 'erin' in record['reason']
        assert busy.hosts_of('hot') == ['a']
        assert busy.find('a', 'hot')['power_state'] == 'running'
        assert db.instance_get('hot')['host'] == 'a'

    def test_abort_while_preparing_restarts_the_vm_on_the_source(self, make_cloud):
        # A guest that ignores ACPI keeps the graceful shutdown busy for its whole timeout.
        stubborn = dict(h.HOT, ignores_acpi=True)
        cloud = make_cloud(_cluster(stubborn=h.vm('a', 'local', workload=stubborn)), **SCALED)
        migration = cloud.api.migrate_server('stubborn', 'cold',
                                             options={'shutdown': True,
                                                      'shutdown_timeout': 40})
        cloud.wait_state(migration, 'preparing')
        cloud.api.migration_abort(migration['id'])
        record = cloud.wait_end(migration)
        assert record['state'] == 'cancelled', record['reason']
        assert record['vm_location'] == 'a'
        assert cloud.hosts_of('stubborn') == ['a']
        assert cloud.find('a', 'stubborn')['power_state'] == 'running'

    @pytest.mark.parametrize('power_state, options', [
        ('shutoff', {}),
        # Shut down by this migration: started again when the abort rolls it back.
        ('running', {'shutdown': True}),
    ])
    def test_abort_of_a_cold_migration_cuts_its_copy(self, make_cloud, power_state,
                                                     options):
        # A 64 MiB disk at 4 MiB/s: sixteen seconds of copy.
        cloud = make_cloud(h.cluster({'big': h.vm('a', 'local', power_state=power_state)}),
                           **{'cold_migration.bandwidth': 4})
        disk = os.path.join(cloud.state_path, 'sim', 'local', 'a', 'big-vda.img')
        with open(disk, 'r+b') as f:
            f.truncate(64 * 1024 * 1024)
        migration = cloud.api.migrate_server('big', 'cold', options=options)
        dest_dir = os.path.join(cloud.state_path, 'sim', 'local', 'b')
        h.wait_for(lambda: os.path.exists(os.path.join(dest_dir, 'big-vda.img.part')), 10,
                   'the copy to start')
        asked = time.monotonic()
        record = h.api_as('erin').migration_abort(migration['id'])
        assert time.monotonic() - asked < 2.0
        assert record['abort_requested']
        record = cloud.wait_end(migration, timeout=4)
        assert time.monotonic() - asked < 4.0
        assert record['state'] == 'cancelled', record['reason']
        assert 'erin' in record['reason']
        assert record['vm_location'] == 'a' and db.instance_get('big')['host'] == 'a'
        assert cloud.hosts_of('big') == ['a']
        assert cloud.find('a', 'big')['power_state'] == power_state
        assert os.path.getsize(disk) == 64 * 1024 * 1024
        assert os.listdir(dest_dir) == []

    def test_abort_refused_once_it_ended(self, make_cloud):
        cloud = make_cloud(_cluster())
        done = cloud.run('idle', 'live')
        assert done['state'] == 'completed'
        for verb in (cloud.api.migration_abort, cloud.api.migration_resume,
                     cloud.api.migration_force_complete):
            _refused(lambda: verb(done['id']), 'completed')
        _refused(lambda: cloud.api.migration_hold(done['id'], 'late'), 'completed')
        cancelled = cloud.api.migrate_server('off', 'cold', hold_reason='x')
        cloud.api.migration_abort(cancelled['id'])
        _refused(lambda: cloud.api.migration_abort(cancelled['id']), 'cancelled')

    def test_unknown_migration(self, make_cloud):
        cloud = make_cloud(_cluster())
        with pytest.raises(exception.MigrationNotFound) as err:
            cloud.api.migration_abort(4242)
        assert '4242' in str(err.value)


class TestForceComplete:
    def test_switches_to_post_copy_when_permitted(self, busy):
        record = busy.api.migration_force_complete(busy.running['id'])
        assert record['force_complete_requested']
        record = busy.wait_end(busy.running)
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is True
        assert busy.hosts_of('hot') == ['b']
        assert busy.find('b', 'hot')['power_state'] == 'running'

    def test_pauses_the_guest_without_post_copy(self, make_cloud):
        cloud = make_cloud(_cluster(), **SCALED)
        migration = cloud.api.migrate_server('hot', 'live')
        cloud.wait_state(migration, 'running')
        cloud.api.migration_force_complete(migration['id'])
        record = cloud.wait_end(migration)
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is False
        # Paused, the guest dirtied nothing: the whole working set went in one blackout,
        # far longer than the allowed downtime, and it runs again on the destination.
        assert record['downtime_ms'] > 500
        assert cloud.hosts_of('hot') == ['b']
        assert cloud.find('b', 'hot')['power_state'] == 'running'

    def test_refused_in_post_copy(self, make_cloud):
        # 2 GiB pulled over 1 Gbit/s: 17 modelled seconds in post-copy, 7 real ones.
        big = h.vm('a', 'shared', memory_mb=2048, workload=dict(h.HOT, wws_mb=2048))
        cloud = make_cloud(_cluster(big=big), **dict(SCALED, **{'sim.time_scale': 2.5}))
        migration = cloud.api.migrate_server('big', 'live', options={'post_copy': True})
        cloud.wait_state(migration, 'running')
        cloud.api.migration_force_complete(migration['id'])
        cloud.wait_state(migration, 'postcopy')
        _refused(lambda: cloud.api.migration_abort(migration['id']), 'postcopy')
        _refused(lambda: cloud.api.migration_force_complete(migration['id']), 'postcopy')
        _refused(lambda: cloud.api.migration_hold(migration['id'], 'x'), 'postcopy')
        record = cloud.wait_end(migration)
        assert record['state'] == 'completed' and record['postcopy'] is True

    def test_only_for_live_migrations(self, make_cloud):
        stubborn = dict(h.HOT, ignores_acpi=True)
        cloud = make_cloud(_cluster(stubborn=h.vm('a', 'shared', workload=stubborn)),
                           **SCALED)
        migration = cloud.api.migrate_server('stubborn', 'cold',
                                             options={'shutdown': True,
                                                      'shutdown_timeout': 40})
        cloud.wait_state(migration, 'preparing')
        _refused(lambda: cloud.api.migration_force_complete(migration['id']), 'preparing')
        cloud.api.migration_abort(migration['id'])
        assert cloud.wait_end(migration)['state'] == 'cancelled'

    def test_broken_post_copy_ends_in_error_with_the_vm_paused_on_the_destination(
            self, make_cloud):
        # Virtual clock: round 1 ends at 8.6 s, the timeout (10 s for 1 GiB) asks for
        # post-copy, which starts at 17.2 s; the link is lost at 20 s, mid-pull.
        workload = dict(h.HOT, link_loss_at=20)
        fragile = h.vm('a', 'shared', memory_mb=1024, workload=workload)
        cloud = make_cloud(_cluster(fragile=fragile))
        record = cloud.run('fragile', 'live', post_copy=True, completion_timeout=10,
                           timeout_action='force_complete_postcopy')
        assert record['state'] == 'error'
        assert record['vm_location'] == 'paused on b'
        assert 'link to b lost' in record['reason']
        assert record['postcopy'] is True
        # The destination holds it, paused, no longer incoming; the stale copy left on
        # the source is paused too: it runs nowhere until someone decides.
        assert cloud.hosts_of('fragile') == ['a', 'b']
        assert cloud.on('b', 'fragile')['power_state'] == 'paused'
        assert cloud.on('a', 'fragile')['power_state'] == 'paused'
        assert cloud.on('a', 'fragile')['postcopy_failed'] is True


class TestTimeoutAction:
    """A guest that never converges, on the virtual clock: the timeout comes at once."""

    def _run(self, make_cloud, **options):
        cloud = make_cloud(_cluster())
        record = cloud.run('hot', 'live', completion_timeout=30, **options)
        return cloud, record

    def test_abort(self, make_cloud):
        cloud, record = self._run(make_cloud, timeout_action='abort')
        assert record['state'] == 'failed'
        assert 'did not complete within 30 s' in record['reason']
        assert record['vm_location'] == 'a'
        assert cloud.hosts_of('hot') == ['a']
        assert cloud.find('a', 'hot')['power_state'] == 'running'

    def test_pause(self, make_cloud):
        cloud, record = self._run(make_cloud, timeout_action='pause')
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is False and record['downtime_ms'] > 500
        assert cloud.hosts_of('hot') == ['b']
        assert cloud.find('b', 'hot')['power_state'] == 'running'

    def test_post_copy(self, make_cloud):
        cloud, record = self._run(make_cloud, timeout_action='force_complete_postcopy',
                                  post_copy=True)
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is True
        assert cloud.hosts_of('hot') == ['b']

    def test_post_copy_not_permitted_pauses(self, make_cloud):
        cloud, record = self._run(make_cloud, timeout_action='force_complete_postcopy')
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is False and record['downtime_ms'] > 500
        assert cloud.hosts_of('hot') == ['b']

    def test_auto_converge_makes_it_converge(self, make_cloud):
        # Throttled to 99 %, 4000 MiB/s of dirtying becomes 40 MiB/s: under the link.
        cloud = make_cloud(_cluster())
        record = cloud.run('hot', 'live', auto_converge=True, timeout_action='abort')
        assert record['state'] == 'completed', record['reason']
        assert record['postcopy'] is False and record['downtime_ms'] <= 500


class TestConvergenceOptions:
    """Virtual clock: what each option changes shows in how the migration ends."""

    def test_max_downtime_reached_in_steps(self, make_cloud):
        # 1 GiB always dirty over 1 Gbit/s: only an 8.6 s blackout can finish it. With
        # one step the allowed downtime jumps to 10 s after the first 75 s.
        cloud = make_cloud(_cluster())
        record = cloud.run('hot', 'live', max_downtime=10000, downtime_steps=1,
                           timeout_action='abort')
        assert record['state'] == 'completed', record['reason']
        assert 8000 < record['downtime_ms'] <= 10000

    def test_bandwidth_cap_below_the_dirty_rate_never_converges(self, make_cloud):
        steady = h.vm('a', 'shared', memory_mb=1024,
                      workload={'dirty_rate_mbps': 200, 'wws_mb': 1024})
        cloud = make_cloud(h.cluster({'steady': steady, 'twin': dict(steady)}))
        assert cloud.run('twin', 'live', completion_timeout=30)['state'] == 'completed'
        record = cloud.run('steady', 'live', bandwidth=100, completion_timeout=30,
                           timeout_action='abort')
        assert record['state'] == 'failed'
        assert 'did not complete within 30 s' in record['reason']
        assert cloud.hosts_of('steady') == ['a']
