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

    def run(self):
        while True:
            done = self.job.wait(self.interval)
            stats = self.job.stats()
            self.on_progress(stats)
            if done:
                break
            self._follow(stats)
        return {'status': self.job.status, 'error': self.job.error,
                'stats': self.job.stats(), 'actions': self.actions}

    def _follow(self, stats):
        elapsed = stats.get('time_elapsed', 0) / 1000.0
        data_total = stats.get('data_total') or stats.get('memory_total') or 0
        if self._schedule is None:
            self._schedule = downtime_steps(self.policy['max_downtime_ms'],
                                            self.policy['downtime_steps'],
                                            self.policy['downtime_delay'], data_total)
        request = self.requests()
        if request == 'abort':
            return self._act('abort', 'aborted on request')
        if request == 'force-complete':
            return self._complete('forced to complete on request')
        while self._schedule and elapsed >= self._schedule[0][0]:
            _at, downtime = self._schedule.pop(0)
            self._try(self.job.set_max_downtime, downtime)
            self.actions.append('downtime %d ms at %.1f s' % (downtime, elapsed))
        if self._timed_out or stats.get('postcopy'):
            return
        limit = self.policy['completion_timeout'] * max(data_total / GiB, 1.0 / 64)
        if self.policy['completion_timeout'] and elapsed > limit:
            self._timed_out = True
            return self._timeout('did not complete within %.0f s' % limit)
        remaining = stats.get('data_remaining', stats.get('memory_remaining'))
        if remaining is not None and (self._best_remaining is None
                                      or remaining < self._best_remaining):
            self._best_remaining, self._best_at = remaining, elapsed
        elif (self.policy['progress_timeout']
              and elapsed - self._best_at > self.policy['progress_timeout']):
            self._timed_out = True
            self._timeout('no progress for %.0f s (remaining data not shrinking)'
                          % (elapsed - self._best_at))

    def _timeout(self, why):
        action = self.policy['timeout_action']
        if action == 'abort':
            self._act('abort', why)
        elif action == 'force_complete_postcopy':
            self._complete(why)
        else:
            self._act('pause_guest', why)

    def _complete(self, why):
        if self.policy.get('post_copy'):
            self._act('start_postcopy', why)
        else:
            self._act('pause_guest', why)

    def _act(self, action, why):
        LOG.info('Migration job: %s (%s)', action, why)
        self.actions.append('%s: %s' % (action, why))
        self._try(getattr(self.job, action))

    def _try(self, func, *args):
        # The job may finish between the poll and the call; that is not an error.
        try:
            func(*args)
        except Exception as e:  # noqa: driver errors vary by hypervisor
            if self.job.status == base.JOB_RUNNING:
                LOG.warning('Migration job control %s failed: %s', func.__name__, e)
                self.actions.append('%s failed: %s' % (func.__name__, e))


class RateLimited(object):
    """Call ``func`` at most once per ``interval`` seconds, and always for the last call."""

    def __init__(self, func, interval):
        self.func = func
        self.interval = interval
        self._last = 0.0

    def __call__(self, stats, final=False):
        now = time.monotonic()
        if final or now - self._last >= self.interval:
            self._last = now
            self.func(stats)
