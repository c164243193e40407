"""Unit tests of the simulated hypervisor's pre-copy migration model.

Hand computations work in MiB and MiB/s: B = 1 GiB/s = 1024 MiB/s and the
default CPU/device state is 512 KiB = 0.5 MiB.
"""

import threading
import time

import pytest

from vmmig.hypervisor.sim import precopy
from vmmig.hypervisor.sim.clock import ScaledClock, VirtualClock
from vmmig.hypervisor.sim.precopy import GiB, MiB, PrecopyJob, PrecopySettings


def make_job(**kw):
    defaults = dict(ram_bytes=1 * GiB, wws_bytes=256 * MiB, dirty_rate=100 * MiB,
                    bandwidth=1 * GiB, max_downtime=0.05)
    defaults.update(kw)
    return PrecopyJob(PrecopySettings(**defaults), VirtualClock())


def run_collect(job):
    """Stats after every event, until the job ends."""
    seq = [job.stats()]
    while job.step():
        seq.append(job.stats())
    seq.append(job.stats())
    return seq


# A VM dirtying twice as fast as the link, all of its RAM writable.
HOT = dict(ram_bytes=1 * GiB, wws_bytes=1 * GiB, dirty_rate=2 * GiB, bandwidth=1 * GiB,
           max_downtime=0.3)


class TestHandComputed:
    def test_two_rounds_then_blackout(self):
        # R=1024, W=256, D=100, B=1024, max_downtime=0.05 s
        # round 1: sends 1024 in 1 s, dirties min(256, 100*1) = 100
        # boundary: (100 + 0.5)/1024 = 0.0981 s > 0.05 -> round 2
        # round 2: sends 100 in 100/1024 = 0.09765625 s, dirties 9.765625
        # boundary: (9.765625 + 0.5)/1024 = 0.010025 s <= 0.05 -> blackout
        # elapsed = 1 + 0.09765625 + 0.010025 = 1.10768 s
        # RAM moved = 1024 + 100 + 9.765625 = 1133.765625 MiB
        job = make_job()
        job.run()
        assert job.status == precopy.COMPLETED and job.error is None
        assert [r.sent for r in job.rounds] == pytest.approx([1024 * MiB, 100 * MiB])
        assert [r.duration for r in job.rounds] == pytest.approx([1.0, 100 / 1024])
        assert [r.dirtied for r in job.rounds] == pytest.approx([100 * MiB, 9.765625 * MiB])
        assert job.downtime == pytest.approx(10.265625 / 1024)
        assert job.elapsed == pytest.approx(1 + 100 / 1024 + 10.265625 / 1024)
        st = job.stats()
        assert st['type'] == precopy.JOB_COMPLETED
        assert st['memory_processed'] == pytest.approx(1133.765625 * MiB)
        assert st['memory_remaining'] == 0 and st['data_remaining'] == 0
        assert st['downtime'] == 10            # 10.025 ms
        assert st['time_elapsed'] == 1108      # 1107.68 ms
        assert st['memory_iteration'] == 2 and st['postcopy'] is False

    def test_working_set_caps_the_dirty_pages(self):
        # R=4096, W=512, D=512, B=1024, max_downtime=0.3 s
        # round 1: 4096 in 4 s, dirties min(512, 512*4 = 2048) = 512 (W caps it)
        # boundary: 512.5/1024 = 0.5005 s > 0.3 -> round 2
        # round 2: 512 in 0.5 s, dirties min(512, 256) = 256
        # boundary: 256.5/1024 = 0.250488 s <= 0.3 -> blackout, downtime 0.250488 s
        # elapsed = 4 + 0.5 + 0.250488 = 4.750488 s; RAM moved = 4096+512+256 = 4864 MiB
        job = make_job(ram_bytes=4 * GiB, wws_bytes=512 * MiB, dirty_rate=512 * MiB,
                       max_downtime=0.3)
        st = job.run()
        assert [r.dirtied for r in job.rounds] == pytest.approx([512 * MiB, 256 * MiB])
        assert job.downtime == pytest.approx(256.5 / 1024)
        assert job.elapsed == pytest.approx(4.5 + 256.5 / 1024)
        assert st['memory_processed'] == pytest.approx(4864 * MiB)
        assert st['downtime'] == 250 and st['time_elapsed'] == 4750

    def test_auto_converge_throttles_in_steps(self):
        # R=W=1024, D=B=1024, max_downtime=0.35 s, throttle 20 % then +10 %
        # r1: 1024 in 1 s, dirties 1024 (no check after round 1)
        # r2: 1024 in 1 s, dirties 1024 > 50 % of 1024 -> throttle 20 %, D_eff 819.2
        # r3: 1024 in 1 s, dirties 819.2 > 512       -> 30 %, D_eff 716.8
        # r4: 819.2 in 0.8 s, dirties 573.44 (70 %)  -> 40 %, D_eff 614.4
        #     boundary 573.94/1024 = 0.5605 s > 0.35
        # r5: 573.44 in 0.56 s, dirties 344.064 (60 %) -> 50 %
        #     boundary 344.564/1024 = 0.336488 s <= 0.35 -> blackout
        # elapsed = 1+1+1+0.8+0.56 + 0.336488 = 4.696488 s
        # RAM moved = 3*1024 + 819.2 + 573.44 + 344.064 = 4808.704 MiB
        job = make_job(wws_bytes=1 * GiB, dirty_rate=1 * GiB, max_downtime=0.35,
                       auto_converge=True)
        st = job.run()
        assert job.status == precopy.COMPLETED
        assert [r.throttle for r in job.rounds] == [0, 0, 20, 30, 40]
        assert [r.duration for r in job.rounds] == pytest.approx([1, 1, 1, 0.8, 0.56])
        assert st['auto_converge_throttle'] == 50
        assert job.downtime == pytest.approx(344.564 / 1024)
        assert job.elapsed == pytest.approx(4.36 + 344.564 / 1024)
        assert st['memory_processed'] == pytest.approx(4808.704 * MiB)

    def test_stats_mid_round_are_interpolated(self):
        # half-way through round 1: 512 sent, 50 dirtied, 1024-512+50 = 562 left
        job = make_job()
        job.run_until(0.5)
        assert job.clock.now() == pytest.approx(0.5)
        st = job.stats()
        assert st['type'] == precopy.JOB_UNBOUNDED and job.status == precopy.RUNNING
        assert st['time_elapsed'] == 500 and st['memory_iteration'] == 1
        assert st['memory_processed'] == 512 * MiB
        assert st['memory_remaining'] == 562 * MiB
        assert st['memory_dirty_rate'] == 100 * MiB // 4096
        assert 'downtime' not in st


class TestConvergence:
    def test_plain_precopy_does_not_converge(self):
        job = make_job(**HOT)
        remaining = []
        for _ in range(30):
            assert job.step() is True
            remaining.append(job.stats()['memory_remaining'])
        assert job.status == precopy.RUNNING
        assert len(job.rounds) == 30
        assert remaining[-1] == 1 * GiB
        assert all(b >= a for a, b in zip(remaining, remaining[1:]))   # never shrinks

    def test_max_rounds_fails_as_not_converged(self):
        job = make_job(max_rounds=50, **HOT)
        st = job.run()
        assert job.status == precopy.FAILED and job.error == 'did not converge'
        assert st['type'] == precopy.JOB_FAILED and st['errmsg'] == 'did not converge'
        assert len(job.rounds) == 50 and job.elapsed == pytest.approx(50.0)

    def test_auto_converge_makes_it_converge(self):
        job = make_job(auto_converge=True, **HOT)
        st = job.run()
        assert job.status == precopy.COMPLETED
        assert 0 < st['auto_converge_throttle'] <= 99
        assert job.downtime <= 0.3

    def test_postcopy_completes_it(self):
        job = make_job(postcopy_permitted=True, **HOT)
        for _ in range(3):
            job.step()
        job.start_postcopy()
        assert job.step() is True                    # switch-over: only CPU state moves
        assert job.postcopy and job.downtime == pytest.approx(0.5 / 1024)
        assert job.step() is False                   # pull the 1 GiB dirty set in 1 s
        st = job.stats()
        assert job.status == precopy.COMPLETED and st['postcopy'] is True
        assert job.elapsed == pytest.approx(3 + 0.5 / 1024 + 1)
        assert st['memory_processed'] == 4 * GiB and st['memory_remaining'] == 0

    def test_raising_max_downtime_lets_it_converge(self):
        # the dirty set stays at W = 256 MiB: blackout needs 256.5/1024 = 0.250488 s
        job = make_job(dirty_rate=2 * GiB, max_downtime=0.1)
        for _ in range(20):
            assert job.step()
        for downtime in (0.15, 0.2, 0.25):
            job.set_max_downtime(downtime)
            assert job.step() and job.status == precopy.RUNNING
        job.set_max_downtime(0.3)
        assert job.step() is False
        assert job.status == precopy.COMPLETED
        assert job.downtime == pytest.approx(256.5 / 1024)
        assert len(job.rounds) == 23

    def test_bandwidth_cap(self):
        job = make_job()
        job.set_bandwidth(512 * MiB)                 # below the 1 GiB/s link
        job.step()
        assert job.rounds[0].duration == pytest.approx(2.0)
        assert job.stats()['memory_bps'] == 512 * MiB
        job.set_bandwidth(4 * GiB)                   # above it: the link bounds it
        assert job.bandwidth == 1 * GiB


class TestBlockCopy:
    def test_disk_copied_before_memory(self):
        job = make_job(disk_bytes=10 * GiB)
        job.run_until(5)
        st = job.stats()
        assert st['disk_total'] == 10 * GiB
        assert st['disk_processed'] == 5 * GiB and st['disk_remaining'] == 5 * GiB
        assert st['memory_processed'] == 0 and st['memory_remaining'] == 1 * GiB
        assert st['data_total'] == 11 * GiB and st['data_remaining'] == 6 * GiB
        job.step()                                   # end of the block copy at 10 s
        assert job.rounds == [] and job.elapsed == pytest.approx(10.0)
        assert job.stats()['disk_remaining'] == 0
        st = job.run()
        assert job.rounds[0].start == pytest.approx(10.0)
        # memory as in the first hand-computed case, 10 s later
        assert job.elapsed == pytest.approx(10 + 1 + 100 / 1024 + 10.265625 / 1024)
        assert st['data_processed'] == pytest.approx(10 * GiB + 1133.765625 * MiB)


class TestJitter:
    SETTINGS = dict(wws_bytes=1 * GiB, dirty_rate=800 * MiB, jitter=0.3)

    def test_same_seed_same_figures(self):
        a = run_collect(make_job(seed=42, **self.SETTINGS))
        b = run_collect(make_job(seed=42, **self.SETTINGS))
        assert len(a) > 4 and a == b

    def test_other_seed_other_figures(self):
        a = run_collect(make_job(seed=42, **self.SETTINGS))
        b = run_collect(make_job(seed=43, **self.SETTINGS))
        assert a != b

    def test_no_jitter_is_exact(self):
        job = make_job(seed=1, wws_bytes=1 * GiB, dirty_rate=800 * MiB)
        job.step()
        assert job.rounds[0].dirty_rate == 800 * MiB


class TestAbortAndFailures:
    def test_abort_cancels(self):
        job = make_job(**HOT)
        job.step()
        job.abort()
        assert job.step() is False
        assert job.status == precopy.CANCELLED and job.done
        assert job.stats()['type'] == precopy.JOB_CANCELLED
        with pytest.raises(precopy.MigrationError):
            job.abort()

    def test_abort_mid_round_keeps_partial_progress(self):
        job = make_job(**HOT)
        job.run_until(0.25)
        job.abort()
        job.run_until(100)
        assert job.status == precopy.CANCELLED
        assert job.stats()['memory_processed'] == 256 * MiB

    def test_fail_during_precopy(self):
        job = make_job()
        job.fail_at(0.5, 'link lost')
        st = job.run()
        assert job.status == precopy.FAILED and job.error == 'link lost'
        assert st['type'] == precopy.JOB_FAILED and st['errmsg'] == 'link lost'
        assert st['time_elapsed'] == 500 and st['memory_processed'] == 512 * MiB
        assert job.rounds == [] and 'downtime' not in st

    def test_fail_during_postcopy(self):
        job = make_job(postcopy_permitted=True, **HOT)
        job.step()
        job.start_postcopy()
        job.fail_at(1.5, 'link lost')                # pull runs from ~1.0005 s to ~2.0005 s
        st = job.run()
        assert job.status == precopy.POSTCOPY_FAILED and job.error == 'link lost'
        assert st['type'] == precopy.JOB_FAILED and st['postcopy'] is True
        assert 0 < st['memory_remaining'] < 1 * GiB

    def test_fail_after_completion_has_no_effect(self):
        job = make_job()
        job.fail_at(100)
        job.run()
        assert job.status == precopy.COMPLETED

    def test_postcopy_not_permitted(self):
        job = make_job(**HOT)
        with pytest.raises(precopy.PostcopyNotPermitted, match='post-copy'):
            job.start_postcopy()
        job.step()
        assert job.status == precopy.RUNNING and not job.postcopy

    def test_postcopy_after_end_is_an_error(self):
        job = make_job(postcopy_permitted=True)
        job.run()
        with pytest.raises(precopy.MigrationError):
            job.start_postcopy()

    def test_invalid_settings(self):
        with pytest.raises(ValueError):
            make_job(wws_bytes=2 * GiB)
        with pytest.raises(ValueError):
            make_job(bandwidth=0)


class TestClocks:
    def test_virtual_clock(self):
        clock = VirtualClock(5.0)
        clock.sleep(2.5)
        assert clock.now() == 7.5
        assert clock.advance(0.5) == 8.0
        with pytest.raises(ValueError):
            clock.advance(-1)

    def test_job_on_virtual_clock_moves_it(self):
        clock = VirtualClock(100.0)
        job = PrecopyJob(PrecopySettings(1 * GiB, 256 * MiB, 100 * MiB, 1 * GiB,
                                         max_downtime=0.05), clock)
        job.run_until(100.5)
        assert job.stats()['time_elapsed'] == 500
        job.run()
        assert clock.now() == pytest.approx(100 + job.elapsed)

    def test_scaled_clock_really_sleeps(self):
        clock = ScaledClock(scale=100.0)
        t0 = clock.now()
        clock.sleep(1.0)                             # 10 ms of real time
        assert clock.now() - t0 >= 1.0
        job = PrecopyJob(PrecopySettings(1 * GiB, 256 * MiB, 100 * MiB, 1 * GiB,
                                         max_downtime=0.05), clock)
        job.run()
        assert job.status == precopy.COMPLETED
        assert clock.now() >= job._t0 + job.elapsed

    def test_abort_from_monitor_thread(self):
        # what a convergence monitor does: poll stats() and abort() while
        # another thread drives the job on a real-time clock
        job = PrecopyJob(PrecopySettings(**HOT), ScaledClock(scale=1000.0))
        runner = threading.Thread(target=job.run)
        runner.start()
        time.sleep(0.02)                             # ~20 modelled seconds
        assert job.stats()['type'] == precopy.JOB_UNBOUNDED
        job.abort()
        runner.join(timeout=5)
        assert not runner.is_alive()
        assert job.status == precopy.CANCELLED
