"""Drives a live migration job to convergence, the same way for every driver.

Follows the configured schedule: the allowed downtime rises in steps, a
completion timeout scaled by the data to move, stall detection (the remaining
data has not shrunk for a while), and then the timeout action. Operator
requests (abort, force-complete) arrive through ``requests()``.
"""

import logging
import time

from vmmig.hypervisor import base

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3
#: seconds of job time before a refused timeout action is tried again
RETRY_AFTER = 1.0


def downtime_steps(max_downtime_ms, steps, delay_per_gib, data_bytes):
    """(seconds into the job, allowed downtime ms) pairs, rising exponentially.

    Starting low keeps the blackout short for guests that converge easily;
    each step waits longer the more data there is to move.
    """
    data_gib = max(data_bytes / GiB, 1.0 / 64)
    delay = delay_per_gib * data_gib
    offset = max_downtime_ms / float(steps + 1)
    growth = (max_downtime_ms - offset) ** (1.0 / steps)
    return [(delay * i, int(offset + growth ** i)) for i in range(steps + 1)]


class Monitor(object):

    def __init__(self, job, policy, on_progress=None, requests=None, interval=0.5):
        """``policy``: max_downtime_ms, downtime_steps, downtime_delay,
        completion_timeout (s per GiB), progress_timeout (s), timeout_action,
        post_copy (permitted)."""
        self.job = job
        self.policy = policy
        self.on_progress = on_progress or (lambda stats: None)
        self.requests = requests or (lambda: None)
        self.interval = interval
        self.actions = []
        self._schedule = None
        self._best_remaining = None
        self._best_at = 0.0
        self._timed_out = False
        self._retry_at = 0.0
        self._pending = None

    def run(self):
        # The schedule's first (lowest) downtime holds from the start, not after a poll.
        self._follow({})
        while True:
            if self.job.wait(self.interval):
                break  # the final figures go with the outcome, not as progress
            stats = self.job.stats()
            self.on_progress(stats)
            self._follow(stats)
        return {'status': self.job.status, 'error': self.job.error,
                'stats': self.job.stats(), 'actions': self.actions}

    def _follow(self, stats):
        elapsed = stats.get('time_elapsed', 0) / 1000.0
        # Early in the job the hypervisor may not know the total yet (libvirt reports 0
        # until QEMU starts sending): the size of the guest is the floor, else the
        # completion timeout would fire at the first poll.
        data_total = max(stats.get('data_total') or stats.get('memory_total') or 0,
                         self.policy.get('data_bytes') or 0)
        if self._schedule is None:
            self._schedule = downtime_steps(self.policy['max_downtime_ms'],
                                            self.policy['downtime_steps'],
                                            self.policy['downtime_delay'], data_total)
        request = self.requests()
        if request is None and self._pending and elapsed >= self._pending[1]:
            request = self._pending[0]
        if request in ('abort', 'force-complete'):
            done = (self._act('abort', 'aborted on request') if request == 'abort'
                    else self._complete('forced to complete on request'))
            # A request the job refused (it was not under way in the hypervisor yet)
            # is kept and tried again, not dropped.
            self._pending = None if done else (request, elapsed + RETRY_AFTER)
            return
        while self._schedule and elapsed >= self._schedule[0][0]:
            _at, downtime = self._schedule.pop(0)
            self._try(self.job.set_max_downtime, downtime)
            self.actions.append('downtime %d ms at %.1f s' % (downtime, elapsed))
        if self._timed_out or stats.get('postcopy'):
            return
        if elapsed < self._retry_at:
            return
        limit = self.policy['completion_timeout'] * max(data_total / GiB, 1.0 / 64)
        if self.policy['completion_timeout'] and elapsed > limit:
            why = 'did not complete within %.0f s' % limit
        else:
            why = None
            remaining = stats.get('data_remaining', stats.get('memory_remaining'))
            if remaining is not None and (self._best_remaining is None
                                          or remaining < self._best_remaining):
                self._best_remaining, self._best_at = remaining, elapsed
            elif (self.policy['progress_timeout']
                  and elapsed - self._best_at > self.policy['progress_timeout']):
                why = ('no progress for %.0f s (remaining data not shrinking)'
                       % (elapsed - self._best_at))
        if why:
            self._timed_out = self._timeout(why)
            if not self._timed_out:
                # Refused, e.g. post-copy asked for before the hypervisor had really
                # started the migration: try again shortly rather than never.
                self._retry_at = elapsed + RETRY_AFTER

    def _timeout(self, why):
        action = self.policy['timeout_action']
        if action == 'abort':
            return self._act('abort', why)
        if action == 'force_complete_postcopy':
            return self._complete(why)
        return self._act('pause_guest', why)

    def _complete(self, why):
        if self.policy.get('post_copy'):
            return self._act('start_postcopy', why)
        return self._act('pause_guest', why)

    def _act(self, action, why):
        LOG.info('Migration job: %s (%s)', action, why)
        self.actions.append('%s: %s' % (action, why))
        return self._try(getattr(self.job, action))

    def _try(self, func, *args):
        """True when done (or moot: the job finished between the poll and the call)."""
        try:
            func(*args)
        except Exception as e:  # noqa: driver errors vary by hypervisor
            if self.job.status == base.JOB_RUNNING:
                LOG.warning('Migration job control %s failed: %s', func.__name__, e)
                self.actions.append('%s failed: %s' % (func.__name__, e))
                return False
        return True


class RateLimited(object):
    """Call ``func`` at most once per ``interval`` seconds. The job's final figures go
    with its outcome (see Monitor.run), so nothing here waits for a last call."""

    def __init__(self, func, interval):
        self.func = func
        self.interval = interval
        # Not 0.0: the monotonic clock starts near 0 at boot, and on a machine up for
        # less than an interval the first report would wait.
        self._last = None

    def __call__(self, stats):
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            self.func(stats)
