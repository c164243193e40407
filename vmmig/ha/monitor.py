"""The HA monitor: in every conductor, active in one (see ha.coordination).

A host marked down (silent for [conductor] heartbeat_timeout, by the dispatcher's
housekeeping) is powered off by the fencing driver; once the BMC confirms it is
off, the monitor records an ``evacuate`` action plan (vmmig/strategies/evacuate.py)
that the conductors' plan executor carries out like any other: its HA-enabled
VMs rebuilt elsewhere by priority. The plan is the record of the recovery: why
(the host down, how it was fenced), each VM and where it went or why it stays.

A fencing that fails or times out leaves every VM where it is: the plan is
recorded ``failed`` with the reason, nothing of it executes, and the host goes
into maintenance. With a fencing driver that cannot power hosts off nor read an
outside fencer's word (``Fencing.fences``), the plan is recorded ``failed`` and
says so; the host is left as it is.
"""

from concurrent import futures
import logging
import threading
import time

from vmmig.backends import base as backends
from vmmig import conf
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig.ha import coordination
from vmmig.plans import executor
from vmmig.plans import model as plan_model
from vmmig.plans import states
from vmmig import plugins
from vmmig.strategies import evacuate

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class Monitor(object):

    def __init__(self, conductor):
        """``conductor``: the ConductorManager whose dispatcher executes the plans."""
        self.conductor = conductor
        self.name = conductor.name
        self.leadership = coordination.Leadership(self.name)
        self._pool = futures.ThreadPoolExecutor(4, thread_name_prefix='vmmig-ha')
        self._busy = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._started = time.monotonic()

    def start(self):
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name='vmmig-ha-monitor',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._pool.shutdown(wait=True)
        self.leadership.stop()

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: the monitor must survive a database hiccup
                LOG.exception('HA monitor pass failed; trying again')
            self._stop.wait(CONF.ha.monitor_interval)

    def tick(self):
        if not self.leadership.active():
            return
        # Silence from before this conductor started says nothing (as for marking down).
        if time.monotonic() - self._started < CONF.conductor.heartbeat_timeout:
            return
        cutoff = time.time() - CONF.conductor.heartbeat_timeout - CONF.ha.grace_period
        handled = None
        for host in db.host_list():
            if (host['state'] == 'down' and not host['maintenance']
                    and (host['last_heartbeat'] or 0) < cutoff):
                if handled is None:
                    handled = plans_db.latest_recoveries()
                # A plan newer than its last heartbeat: this failure has one. A monitor
                # stopped while it fenced left none: the next fences again (powering
                # off a host that is off changes nothing).
                if handled.get(host['name'], -1) < (host['last_heartbeat'] or 0):
                    self._submit(host)

    def _submit(self, host):
        name = host['name']
        with self._lock:
            if name in self._busy:
                return
            self._busy.add(name)
        future = self._pool.submit(self._recover, host)
        future.add_done_callback(lambda _f: self._done(name))

    def _done(self, name):
        with self._lock:
            self._busy.discard(name)

    def _recover(self, host):
        try:
            self._fence_and_plan(host)
        except Exception:  # noqa: tried again at the next pass
            LOG.exception('Recovery of %s: a step failed; trying again', host['name'])

    def _fence_and_plan(self, host):
        name = host['name']
        down = 'host %s is down (silent for %.0f s)' % (
            name, time.time() - (host['last_heartbeat'] or 0))
        options = {'recovery_method': CONF.ha.recovery_method,
                   'reserved_hosts': list(CONF.ha.reserved_hosts)}
        fencing = plugins.fencing()
        if not fencing.fences:
            why = ('%s; fencing driver %s does not power hosts off, so its VMs are left '
                   'where they are' % (down, CONF.drivers.fencing))
            plan = self._record(name, why, options, states.FAILED, why)
            if plan:
                LOG.error('HA monitor: %s (plan %s)', why, plan['id'])
                self._notify('error', 'vmmig.ha.host.down', plan)
            return
        LOG.warning('Recovery of %s: %s; fencing it', name, down)
        self._notify('info', 'vmmig.ha.recovery.start', {'host': name, 'reason': down})
        ok, how = fencing.confirm(db.host_get(name))
        if not ok:
            why = ('%s; fencing failed: %s; no VM was rebuilt, each stays on %s'
                   % (down, how, name))
            plan = self._record(name, why, options, states.FAILED, why,
                                maintenance=('HA: fencing failed: %s' % how)[:255])
            if plan:
                LOG.error('Recovery of %s: %s (plan %s)', name, why, plan['id'])
                backends.tell_maintenance(self.conductor.backend, name)
                self._notify('error', 'vmmig.ha.fencing.failed', plan)
            return
        why = '%s; fenced: %s' % (down, how)
        # Out of placement until an operator says the host is sound again.
        plan = self._record(name, why, options, states.ONGOING, None, maintenance=(
            'HA: fenced: %s; its VMs were rebuilt elsewhere' % how)[:255])
        if plan is None:
            return
        backends.tell_maintenance(self.conductor.backend, name)
        LOG.warning('Recovery of %s: %s; plan %s evacuates %d VM(s)', name, why, plan['id'],
                    sum(a['state'] == states.PENDING for a in plan['actions']))
        executor.notify(self.conductor.notifier, 'create', plan, reason=why)
        executor.notify(self.conductor.notifier, 'start', plan, reason=why)
        self.conductor.dispatcher.wake()

    def _record(self, host, reason, options, state, result, maintenance=None):
        """The plan of this failure (None if another monitor recorded it first)."""
        model = plan_model.ClusterModel.load(host)
        actions, estimate = evacuate.Evacuate().build(model, host, options, reserved=(
            CONF.scheduler.reserved_host_memory_mb, CONF.scheduler.reserved_host_vcpus,
            CONF.scheduler.cpu_allocation_ratio))
        if state != states.ONGOING:
            # Nothing of it executes: every VM stays, for the plan's reason.
            actions = [dict(a, migration_type=None, dest_host=None, state=states.STAYS,
                            reason=a['reason'] if a['state'] == states.STAYS else result)
                       for a in actions]
        return plans_db.recovery_plan_create(
            {'host': host, 'state': state, 'reason': reason, 'result': result,
             'options': options, 'requested_by': 'ha-monitor', 'estimate_s': estimate},
            actions, maintenance_reason=maintenance)

    def _notify(self, priority, event_type, payload):
        try:
            getattr(self.conductor.notifier, priority)({}, event_type, payload)
        except Exception:  # noqa: the record and the log hold it already
            LOG.warning('Could not send %s', event_type, exc_info=True)
