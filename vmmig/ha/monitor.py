"""The HA monitor: in every conductor, active in one (see ha.coordination).

A host marked down (silent for [conductor] heartbeat_timeout, by the dispatcher's
housekeeping) gets a recovery: the fencing driver powers it off, and once the
BMC confirms it is off, its HA-enabled VMs are evacuated by priority
(ha.recovery). A fencing that fails or times out leaves every VM where it is,
puts the host in maintenance and says why, loudly. With a fencing driver that
cannot power hosts off, the monitor only reports.
"""

from concurrent import futures
import logging
import threading
import time

from vmmig import conf
from vmmig.db import api as db
from vmmig.db import recoveries
from vmmig.db import states
from vmmig.ha import coordination
from vmmig.ha import recovery
from vmmig import plugins

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class Monitor(object):

    def __init__(self, conductor):
        """``conductor``: the ConductorManager whose path records the evacuations."""
        self.conductor = conductor
        self.name = conductor.name
        self.leadership = coordination.Leadership(self.name)
        self._pool = futures.ThreadPoolExecutor(4, thread_name_prefix='vmmig-ha')
        self._busy = set()
        self._planned = set()
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
        for rec in recoveries.list_(state=recoveries.UNFINISHED):
            if rec['owner'] != self.name:
                if not recoveries.adopt(rec['id'], rec['owner'], self.name):
                    continue
                LOG.warning('Recovery %s of %s: taking it over from %s, no longer the '
                            'active monitor', rec['id'], rec['host'], rec['owner'])
            self._submit(rec['id'])
        # Silence from before this conductor started says nothing (as for marking down).
        if time.monotonic() - self._started < CONF.conductor.heartbeat_timeout:
            return
        cutoff = time.time() - CONF.conductor.heartbeat_timeout - CONF.ha.grace_period
        handled = None
        for host in db.host_list():
            if (host['state'] == 'down' and not host['maintenance']
                    and (host['last_heartbeat'] or 0) < cutoff):
                if handled is None:
                    handled = recoveries.latest()
                # A recovery newer than its last heartbeat: this failure has one.
                if handled.get(host['name'], -1) < (host['last_heartbeat'] or 0):
                    self._begin(host)

    def _begin(self, host):
        fencing = plugins.fencing()
        if not fencing.powers_off:
            rec = recoveries.create(host['name'], self.name, CONF.ha.recovery_method,
                                    state=recoveries.REPORTED, reason=(
                                        'host %s is down; fencing driver %s does not power '
                                        'hosts off, so its VMs are left where they are'
                                        % (host['name'], CONF.drivers.fencing)))
            if rec:
                LOG.error('HA monitor: %s', rec['reason'])
                self._notify('error', 'vmmig.ha.host.down', rec)
            return
        rec = recoveries.create(host['name'], self.name, CONF.ha.recovery_method)
        if rec:
            LOG.warning('Recovery %s: host %s is down (silent for %.0f s); powering it '
                        'off', rec['id'], host['name'],
                        time.time() - (host['last_heartbeat'] or 0))
            self._notify('info', 'vmmig.ha.recovery.start', rec)
            self._submit(rec['id'])

    def _submit(self, recovery_id):
        with self._lock:
            if recovery_id in self._busy:
                return
            self._busy.add(recovery_id)
        future = self._pool.submit(self._advance, recovery_id)
        future.add_done_callback(lambda _f: self._done(recovery_id))

    def _done(self, recovery_id):
        with self._lock:
            self._busy.discard(recovery_id)

    def _advance(self, recovery_id):
        try:
            rec = recoveries.get(recovery_id)
            if rec['owner'] != self.name:
                return
            if rec['state'] == recoveries.FENCING:
                rec = self._fence(rec)
            if rec and rec['state'] == recoveries.RECOVERING:
                self._recover(rec)
        except Exception:  # noqa: tried again at the next pass
            LOG.exception('Recovery %s: a step failed; trying again', recovery_id)

    def _fence(self, rec):
        host = rec['host']
        ok, how = plugins.fencing().confirm(db.host_get(host))
        if not ok:
            reason = ('fencing of %s failed: %s; no VM was rebuilt, each stays on %s'
                      % (host, how, host))
            if recoveries.update(rec['id'], self.name, state=recoveries.FAILED,
                                 reason=reason):
                db.host_set_maintenance(host, True, ('HA: fencing failed: %s' % how)[:255])
                LOG.error('Recovery %s: %s', rec['id'], reason)
                self._notify('error', 'vmmig.ha.fencing.failed', recoveries.get(rec['id']))
            return None
        reason = 'fenced: %s' % how
        if not recoveries.update(rec['id'], self.name, state=recoveries.RECOVERING,
                                 fenced_at=time.time(), reason=reason):
            return None
        # Out of placement until an operator says the host is sound again.
        db.host_set_maintenance(host, True, ('HA: %s; its VMs were rebuilt elsewhere' %
                                             reason)[:255])
        LOG.warning('Recovery %s: %s %s', rec['id'], host, reason)
        return recoveries.get(rec['id'])

    def _recover(self, rec):
        if rec['id'] not in self._planned:
            items = recovery.recover_host(self.conductor, rec['host'], rec['method'],
                                          CONF.ha.reserved_hosts, rec['created_at'],
                                          done=rec['items'])
            if not recoveries.update(rec['id'], self.name, items=items):
                return
            self._planned.add(rec['id'])
            rec['items'] = items
        ended = {}
        for item in rec['items']:
            if item['migration'] is not None:
                migration = db.migration_get(item['migration'])
                if migration['state'] not in states.TERMINAL:
                    return  # the next pass looks again
                ended[item['instance']] = migration
        self._finish(rec, ended)

    def _finish(self, rec, ended):
        items = [dict(item, state=ended[item['instance']]['state'],
                      reason=item['reason'] or (
                          None if ended[item['instance']]['state'] == states.COMPLETED
                          else ended[item['instance']]['reason']))
                 if item['instance'] in ended else dict(item, state=None)
                 for item in rec['items']]
        wanted = [i for i in items if i['reason'] != recovery.DISABLED]
        moved = [i for i in wanted if i['state'] == states.COMPLETED]
        stayed = [i for i in wanted if i['state'] != states.COMPLETED]
        state = (recoveries.SUCCEEDED if not stayed else
                 recoveries.PARTIAL if moved else recoveries.FAILED)
        reason = '%s; %d of %d HA-enabled VM(s) rebuilt elsewhere' % (
            rec['reason'], len(moved), len(wanted))
        if stayed:
            reason += '; staying: ' + '; '.join(
                '%s: %s' % (i['instance'], i['reason']) for i in stayed)
        if recoveries.update(rec['id'], self.name, state=state, items=items, reason=reason):
            log = LOG.warning if stayed else LOG.info
            log('Recovery %s of %s %s: %s', rec['id'], rec['host'], state, reason)
            self._notify('error' if stayed else 'info', 'vmmig.ha.recovery.end',
                         recoveries.get(rec['id']))

    def _notify(self, priority, event_type, payload):
        try:
            getattr(self.conductor.notifier, priority)({}, event_type, payload)
        except Exception:  # noqa: the record and the log hold it already
            LOG.warning('Could not send %s', event_type, exc_info=True)
