"""Closed-form model of a QEMU live migration, for the simulated hypervisor.

The model works one *event* at a time, each computed in closed form:

* block copy (local disks only): ``disk_bytes / B``. Memory pre-copy starts
  after it; QEMU really overlaps the two, but sequencing them keeps the
  arithmetic checkable by hand and the total time is about the same.
* pre-copy round 1 sends all RAM R in ``R / B``; round i > 1 sends what the
  guest dirtied during round i-1. A round of length t dirties
  ``min(W, D_eff * t)`` bytes: the guest cannot have more than its writable
  working set W dirty at once.
* before every round after the first, if ``(remaining + cpu_state) / B`` fits
  in ``max_downtime`` the guest is paused and the rest sent (the blackout);
  that duration is the downtime and the job completes.
* auto-converge: at the end of every round from round 2 on, if the round
  dirtied more than 50 % of what it sent, the guest CPU throttle goes up
  (``initial_throttle``, then ``+throttle_increment``, capped at 99 %) and
  ``D_eff = D * (1 - throttle)``.
* post-copy: once requested, at the next round boundary the guest is paused
  while the CPU/device state moves (the downtime) and then runs on the
  destination, which pulls the remaining dirty pages at B.

Settings changed during a round (bandwidth, downtime, post-copy request) take
effect at the next boundary. ``stats()`` mirrors libvirt's
``virDomainGetJobStats`` so one convergence monitor can drive both.
"""

import dataclasses
import math
import random
import threading

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
PAGE_SIZE = 4 * KiB

# virDomainJobType values: the 'type' in stats() is what libvirt-python returns.
JOB_NONE, JOB_BOUNDED, JOB_UNBOUNDED, JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED = range(6)

RUNNING = 'running'
COMPLETED = 'completed'
CANCELLED = 'cancelled'
FAILED = 'failed'
POSTCOPY_FAILED = 'postcopy-failed'   # VM paused on the destination, state uncertain

_JOB_TYPE = {RUNNING: JOB_UNBOUNDED, COMPLETED: JOB_COMPLETED, CANCELLED: JOB_CANCELLED,
             FAILED: JOB_FAILED, POSTCOPY_FAILED: JOB_FAILED}

MAX_THROTTLE = 99
NOT_CONVERGED = 'did not converge'


class MigrationError(Exception):
    """An operation the migration job cannot do in its current state."""


class PostcopyNotPermitted(MigrationError):
    """start_postcopy() on a job started without post-copy permission."""


@dataclasses.dataclass
class PrecopySettings:
    """Workload and tunables of one migration. Bytes, seconds, bytes/s."""

    ram_bytes: int                  # R: guest RAM
    wws_bytes: int                  # W: writable working set, most RAM dirty at once
    dirty_rate: float               # D: bytes/s the running guest dirties
    bandwidth: float                # host link bytes/s
    max_downtime: float = 0.3       # s, allowed blackout; may be raised at run time
    bandwidth_cap: float | None = None    # migration speed cap, bytes/s (None = link speed)
    disk_bytes: int = 0             # local disk to block-copy first (0: shared/volumes)
    cpu_state_bytes: int = 512 * KiB  # CPU/device state sent during the blackout
    auto_converge: bool = False
    initial_throttle: int = 20      # percent
    throttle_increment: int = 10    # percent
    postcopy_permitted: bool = False
    jitter: float = 0.0             # dirty rate varies by +-jitter per round
    seed: int | None = None         # seed of the jitter
    max_rounds: int = 10_000        # safety: fail 'did not converge' after this

    def __post_init__(self):
        checks = [(self.ram_bytes > 0, 'ram_bytes must be > 0'),
                  (0 <= self.wws_bytes <= self.ram_bytes, 'need 0 <= wws_bytes <= ram_bytes'),
                  (self.dirty_rate >= 0, 'dirty_rate must be >= 0'),
                  (self.bandwidth > 0, 'bandwidth must be > 0'),
                  (self.bandwidth_cap is None or self.bandwidth_cap > 0,
                   'bandwidth_cap must be > 0'),
                  (self.max_downtime > 0, 'max_downtime must be > 0'),
                  (self.disk_bytes >= 0 and self.cpu_state_bytes >= 0,
                   'disk_bytes and cpu_state_bytes must be >= 0'),
                  (0 < self.initial_throttle <= MAX_THROTTLE, 'initial_throttle not in 1..99'),
                  (self.throttle_increment >= 0, 'throttle_increment must be >= 0'),
                  (0 <= self.jitter < 1, 'jitter must be in [0, 1)'),
                  (self.max_rounds >= 1, 'max_rounds must be >= 1')]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class Round:
    """One finished pre-copy iteration."""
    iteration: int
    start: float        # job seconds
    duration: float     # s
    sent: float         # RAM bytes sent
    dirtied: float      # bytes dirtied meanwhile = next round's payload
    dirty_rate: float   # effective (throttled, jittered) bytes/s
    throttle: int       # percent in force during the round


@dataclasses.dataclass(frozen=True)
class _Event:
    kind: str           # 'disk', 'round', 'blackout', 'switchover', 'pull', 'give-up'
    start: float
    duration: float = 0.0
    mem: float = 0.0    # RAM bytes sent by the event
    disk: float = 0.0   # disk bytes sent by the event
    dirtied: float = 0.0
    dirty_rate: float = 0.0

    @property
    def end(self):
        return self.start + self.duration


class PrecopyJob:
    """A migration job advanced event by event on ``clock``.

    Times given to ``fail_at`` and reported by ``stats``/``rounds`` are job
    seconds (since creation); ``run_until`` takes a clock time.
    """

    def __init__(self, settings, clock):
        self.settings = dataclasses.replace(settings)   # set_* must not touch the caller's
        self.clock = clock
        self._t0 = clock.now()
        self._t = 0.0                   # job time of the last committed boundary
        self._phase = 'disk' if settings.disk_bytes > 0 else 'precopy'
        self._mem_sent = self._disk_sent = 0.0
        self._remaining = float(settings.ram_bytes)
        self._rounds = []
        self._throttle = 0
        self._rng = random.Random(settings.seed)
        self._pending = None            # planned, not yet committed event
        self._postcopy = self._postcopy_requested = self._aborted = False
        self._fail = None               # (job time, reason)
        self._downtime = None
        self._status, self._error = RUNNING, None
        # stats()/abort() may come from a monitor thread while another steps.
        self._lock = threading.RLock()

    # -- properties -------------------------------------------------------
    done = property(lambda self: self._status != RUNNING)
    status = property(lambda self: self._status)
    error = property(lambda self: self._error)
    rounds = property(lambda self: list(self._rounds))
    postcopy = property(lambda self: self._postcopy)
    downtime = property(lambda self: self._downtime, doc='seconds, None until known')
    throttle = property(lambda self: self._throttle, doc='auto-converge percent')

    @property
    def bandwidth(self):
        cap = self.settings.bandwidth_cap
        return self.settings.bandwidth if cap is None else min(self.settings.bandwidth, cap)

    @property
    def elapsed(self):
        """Job seconds: the clock, but never beyond the event being modelled."""
        with self._lock:
            if self.done:
                return self._t
            x = max(self._t, self.clock.now() - self._t0)
            if x > self._t:
                ev = self._plan()
                x = min(x, ev.end) if ev.kind != 'give-up' else self._t
            return x

    # -- controls (libvirt: migrate-setmaxdowntime, -setspeed, -postcopy, abort)
    def set_max_downtime(self, seconds):
        if seconds <= 0:
            raise ValueError('max_downtime must be > 0')
        self.settings.max_downtime = seconds

    def set_bandwidth(self, bytes_per_s):
        """Cap the migration stream; the link speed still bounds it."""
        if bytes_per_s <= 0:
            raise ValueError('bandwidth must be > 0')
        self.settings.bandwidth_cap = bytes_per_s

    def start_postcopy(self):
        self._check_active()
        if not self.settings.postcopy_permitted:
            raise PostcopyNotPermitted('switching to post-copy requires the migration '
                                       'to be started with post-copy permitted')
        self._postcopy_requested = True

    def abort(self):
        self._check_active()
        self._aborted = True

    def fail_at(self, t, reason='link lost'):
        """Inject a failure once the job has run ``t`` seconds."""
        self._fail = (float(t), reason)

    def _check_active(self):
        if self.done:
            raise MigrationError('no migration job is active (job %s)' % self._status)

    # -- driving ----------------------------------------------------------
    def step(self):
        """Run the next event to its end (sleeping on the clock); False once done."""
        with self._lock:
            if self.done:
                return False
            if self._aborted:
                self._stop_at(self.elapsed, CANCELLED, 'migration cancelled by caller')
                return False
            if self._fail and self._fail[0] <= self._t:
                self._stop_at(self._t, self._fail_status(None), self._fail[1])
                return False
            ev = self._plan()
            if ev.kind == 'give-up':
                self._finish(FAILED, NOT_CONVERGED)
                return False
            fail_t, reason = self._fail or (math.inf, None)
        self._sleep_until(min(ev.end, fail_t))
        with self._lock:
            if fail_t < ev.end:
                self._stop_at(fail_t, self._fail_status(ev), reason)
            else:
                self._commit(ev)
            return not self.done

    def run_until(self, t):
        """Advance until clock time ``t`` or the end of the job."""
        target = t - self._t0
        while not self.done:
            with self._lock:
                ev = None if self._aborted else self._plan()
                fail_t = self._fail[0] if self._fail else math.inf
            if ev is None or ev.kind == 'give-up' or min(ev.end, fail_t) <= target:
                self.step()
            else:
                self._sleep_until(target)   # stop mid-event; stats() interpolates
                break

    def run(self):
        """Run to the end and return the final stats."""
        self.run_until(math.inf)
        return self.stats()

    def _sleep_until(self, x):
        dt = x - (self.clock.now() - self._t0)
        if dt > 0 and math.isfinite(dt):
            self.clock.sleep(dt)

    # -- the model --------------------------------------------------------
    def _plan(self):
        """The event starting at the current boundary (planned once, then fixed)."""
        if self._pending is None:
            self._pending = self._next_event()
        return self._pending

    def _next_event(self):
        s, b, t = self.settings, self.bandwidth, self._t
        if self._phase == 'disk':
            return _Event('disk', t, s.disk_bytes / b, disk=s.disk_bytes)
        if self._phase == 'postcopy':
            # The guest runs on the destination: its writes land there, so
            # nothing new gets dirty; only the pages still at the source move.
            return _Event('pull', t, self._remaining / b, mem=self._remaining)
        if self._postcopy_requested:
            return _Event('switchover', t, s.cpu_state_bytes / b)
        blackout = (self._remaining + s.cpu_state_bytes) / b
        if self._rounds and blackout <= s.max_downtime:
            return _Event('blackout', t, blackout, mem=self._remaining)
        if len(self._rounds) >= s.max_rounds:
            return _Event('give-up', t)
        rate = s.dirty_rate * (1 - self._throttle / 100)
        if s.jitter:
            rate *= 1 + s.jitter * self._rng.uniform(-1, 1)
        duration = self._remaining / b
        return _Event('round', t, duration, mem=self._remaining,
                      dirtied=min(s.wws_bytes, rate * duration), dirty_rate=rate)

    def _commit(self, ev):
        self._pending = None
        self._t = ev.end
        self._mem_sent += ev.mem
        self._disk_sent += ev.disk
        if ev.kind == 'disk':
            self._phase = 'precopy'
        elif ev.kind == 'round':
            self._rounds.append(Round(len(self._rounds) + 1, ev.start, ev.duration,
                                      ev.mem, ev.dirtied, ev.dirty_rate, self._throttle))
            self._remaining = ev.dirtied
            self._auto_converge(ev)
        elif ev.kind == 'switchover':
            self._downtime, self._postcopy, self._phase = ev.duration, True, 'postcopy'
        elif ev.kind in ('blackout', 'pull'):
            self._remaining = 0.0
            if ev.kind == 'blackout':
                self._downtime = ev.duration
            self._finish(COMPLETED, None)

    def _auto_converge(self, ev):
        s = self.settings
        if not s.auto_converge or len(self._rounds) < 2 or ev.dirtied <= 0.5 * ev.mem:
            return
        self._throttle = min(MAX_THROTTLE, s.initial_throttle if not self._throttle
                             else self._throttle + s.throttle_increment)

    def _progress(self, ev, x):
        """(ram sent, disk sent, ram remaining) at job time x inside ``ev``."""
        f = min(1.0, max(0.0, (x - ev.start) / ev.duration)) if ev.duration else 1.0
        remaining = self._remaining - f * ev.mem
        if ev.kind == 'round':
            remaining += min(self.settings.wws_bytes, ev.dirty_rate * f * ev.duration)
        return self._mem_sent + f * ev.mem, self._disk_sent + f * ev.disk, remaining

    def _fail_status(self, ev):
        in_postcopy = self._postcopy or (ev is not None and ev.kind == 'switchover')
        return POSTCOPY_FAILED if in_postcopy else FAILED

    def _stop_at(self, x, status, error):
        """End the job at job time x, keeping the partial progress of the event."""
        if self._pending is not None and self._pending.kind != 'give-up' and x > self._t:
            self._mem_sent, self._disk_sent, self._remaining = self._progress(self._pending, x)
        self._pending = None
        self._t = max(self._t, x)
        self._finish(status, error)

    def _finish(self, status, error):
        self._status, self._error = status, error

    # -- reporting --------------------------------------------------------
    def stats(self):
        """Job statistics keyed like virDomainGetJobStats (bytes, ms, pages/s)."""
        with self._lock:
            s, x = self.settings, self.elapsed
            ev = self._pending if (not self.done and x > self._t) else None
            if ev is not None:
                mem_sent, disk_sent, mem_left = self._progress(ev, x)
            else:
                mem_sent, disk_sent, mem_left = self._mem_sent, self._disk_sent, self._remaining
            if ev is not None and ev.kind == 'round':
                rate, iteration = ev.dirty_rate, len(self._rounds) + 1
            else:
                rate = self._rounds[-1].dirty_rate if self._rounds else 0.0
                iteration = len(self._rounds)
            if self._postcopy:
                rate = 0.0      # the destination guest's writes are not migrated
            disk_left = s.disk_bytes - disk_sent
            stats = {
                'type': _JOB_TYPE[self._status],
                'time_elapsed': round(x * 1000),
                'memory_total': s.ram_bytes,
                'memory_processed': round(mem_sent),
                'memory_remaining': round(mem_left),
                'memory_dirty_rate': round(rate / PAGE_SIZE),
                'memory_page_size': PAGE_SIZE,
                'memory_iteration': iteration,
                'memory_bps': round(self.bandwidth),
                'disk_total': s.disk_bytes,
                'disk_processed': round(disk_sent),
                'disk_remaining': round(disk_left),
                'data_total': s.ram_bytes + s.disk_bytes,
                'data_processed': round(mem_sent + disk_sent),
                'data_remaining': round(mem_left + disk_left),
                'auto_converge_throttle': self._throttle,
                'postcopy': self._postcopy,
            }
            if self._downtime is not None:
                stats['downtime'] = round(self._downtime * 1000)
            if self._error:
                stats['errmsg'] = self._error
            return stats
