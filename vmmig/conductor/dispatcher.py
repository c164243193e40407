"""Takes queued migrations in submission order, within the limits, and runs them.

One loop per conductor: it keeps the conductor's own heartbeat, marks silent
hosts down, adopts migrations of conductors that died (or of this one before
a restart), and claims queued migrations while it has free workers. Claims
are guarded in the database, so several conductors can share one queue.
"""

from concurrent import futures
import logging
import threading
import time

from vmmig.conductor import context
from vmmig import conf
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception
from vmmig import plugins

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class Dispatcher(object):

    def __init__(self, name, notifier, backend, checks):
        """``backend``: who carries out the migrations (vmmig.backends)."""
        self.name = name
        self.notifier = notifier
        self.backend = backend
        self.checks = checks
        self._pool = futures.ThreadPoolExecutor(CONF.conductor.worker_threads,
                                                thread_name_prefix='vmmig-migration')
        # One thread: the start notifications leave in the order the migrations started.
        self._sender = futures.ThreadPoolExecutor(1, thread_name_prefix='vmmig-notify')
        self._running = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._started = time.monotonic()
        self._started_wall = time.time()
        self._housekept = None
        # Queued migrations the last claim left for lack of a slot: a migration that
        # ends may free one. With none, an end needs no look at the queue.
        self._waiting = 0
        # Called at every pass after the queue: the action plans advance here
        # (vmmig/plans/executor.py), from what the database holds.
        self.on_pass = None

    def start(self):
        self._started = time.monotonic()
        self._started_wall = time.time()
        db.service_heartbeat(self.name, 'conductor')
        db.dispatch_lock_create()
        self._thread = threading.Thread(target=self._loop, name='vmmig-dispatcher',
                                        daemon=True)
        self._thread.start()

    def halt(self):
        """Claim and adopt nothing more; what runs goes on (stop() waits for it)."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join()

    def stop(self, wait=True):
        self.halt()
        self._pool.shutdown(wait=wait)
        self._sender.shutdown(wait=wait)

    def wake(self):
        self._wake.set()

    @property
    def stopping(self):
        return self._stop.is_set()

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: the loop must survive a database hiccup
                LOG.exception('Dispatcher pass failed; trying again')
            self._wake.wait(CONF.conductor.dispatch_interval)
            self._wake.clear()

    def tick(self):
        # A wake-up (a new request, a migration that ended) only needs the queue looked
        # at; the rest keeps the pace of dispatch_interval, however busy the conductor.
        now = time.monotonic()
        if self._housekept is None or now - self._housekept >= CONF.conductor.dispatch_interval:
            self._housekept = now
            self.housekeeping()
        self.dispatch()
        if self.on_pass is not None:
            self.on_pass()

    def housekeeping(self):
        db.service_heartbeat(self.name, 'conductor')
        # A conductor that just started has not had the time to hear anybody:
        # silence before it came up says nothing about the agents now. A backend whose
        # hosts do not report themselves says which are down itself.
        if (not self.backend.heartbeats
                or time.monotonic() - self._started < CONF.conductor.heartbeat_timeout):
            down = []
        else:
            down = db.hosts_mark_down(CONF.conductor.heartbeat_timeout)
        if down:
            LOG.warning('Host(s) %s marked down: no heartbeat for %.0f s',
                        ', '.join(down), CONF.conductor.heartbeat_timeout)
        self.adopt()

    def _free_workers(self):
        with self._lock:
            return CONF.conductor.worker_threads - len(self._running)

    def limits(self):
        c = CONF.conductor
        return db.Limits(self.name, c.max_concurrent_migrations, c.max_outbound_per_host,
                         c.max_inbound_per_host)

    def claim_on_create(self):
        """Limits with which a new record may be claimed at once, None with no free
        worker (it is queued then, and claimed by the loop)."""
        return self.limits() if self._free_workers() > 0 else None

    def dispatch(self):
        limits = self.limits()
        while not self._stop.is_set():
            free = self._free_workers()
            if free <= 0:
                return
            claimed, self._waiting = db.migration_claim(limits, free)
            for migration in claimed:
                self._submit(self._execute, migration)
            if len(claimed) < free:
                return

    def run_claimed(self, migration, plan):
        """Run a migration claimed when it was recorded, with the plan just checked."""
        self._submit(self._execute, migration, plan)

    def running(self):
        """Ids of the migrations this conductor's workers run (or recover) now."""
        with self._lock:
            return sorted(self._running)

    def alive(self):
        """Names of the conductors heard from within heartbeat_timeout, this one too.

        Only the heartbeat tells: each conductor process has a name of its own (an
        embedded CLI process too), and one silent for heartbeat_timeout stopped.
        """
        alive = {s['name'] for s in db.service_list('conductor')
                 if s['last_seen'] > time.time() - CONF.conductor.heartbeat_timeout}
        alive.add(self.name)
        return alive

    def adopt(self):
        alive = self.alive()
        for migration in db.migration_list(state=states.ACTIVE):
            owner = migration['owner']
            with self._lock:
                mine_now = migration['id'] in self._running
            if mine_now or (owner in alive and owner != self.name):
                continue
            if owner == self.name and (migration['started_at'] or 0) >= self._started_wall:
                # Claimed by this very process: a request thread that recorded it claimed
                # is about to hand it to a worker. Only those of an earlier run of this
                # conductor are orphans.
                continue
            if db.migration_adopt(migration['id'], migration['state'], owner, self.name):
                LOG.warning('Migration %s of %s: adopting it from %s, which stopped',
                            migration['id'], migration['instance'], owner)
                migration['owner'] = self.name
                self._submit(self._recover, migration)

    def _submit(self, func, migration, *args):
        with self._lock:
            self._running.add(migration['id'])
        future = self._pool.submit(vcontext.bound(func), migration, *args)
        future.add_done_callback(lambda _f: self._done(migration['id']))

    def _done(self, migration_id):
        with self._lock:
            self._running.discard(migration_id)
        if self._waiting:
            self._wake.set()

    def _context(self, migration):
        storage = plugins.load_class(plugins.STORAGE, migration['storage_mode'],
                                     'storage mode of migration %s' % migration['id'])()
        return context.MigrationContext(migration, storage, self.notifier,
                                        self.backend.hosts, sender=self._sender,
                                        backend=self.backend)

    def _execute(self, migration, plan=None):
        """``plan``: the checks made when the request was recorded and claimed in one go;
        without it (a migration that waited in the queue) they are made again."""
        ctx = self._context(migration)
        mtype = plugins.load_class(plugins.MIGRATION, migration['migration_type'],
                                   'type of migration %s' % migration['id'])()
        LOG.info('Migration %s: %s of %s from %s to %s starts', migration['id'],
                 mtype.name, migration['instance'], migration['source_host'],
                 migration['dest_host'])
        # Off the migration's path: the first host step need not wait for the broker.
        ctx.notify_soon('start')
        try:
            if plan is None:
                # The world may have changed while it was queued or held.
                plan = self.checks.plan(migration['instance'], migration['migration_type'],
                                        migration['dest_host'], migration['options'],
                                        exclude_migration=migration['id'],
                                        ask_hosts=not _hosts_checked_lately(migration))
            if plan.migration_type.source_must_be_up:
                ctx.checked_instance = plan.instance
            self.backend.execute(mtype, ctx)
        except exception.StateConflict as e:
            LOG.warning('Migration %s: %s; leaving it to its new owner', migration['id'], e)
        except exception.MigrationCancelled as e:
            self._end(ctx, states.CANCELLED, e.message)
        except exception.VmmigException as e:
            self._end(ctx, states.FAILED, e.message)
        except Exception as e:  # noqa: any failure ends in a rollback and a recorded state
            LOG.exception('Migration %s failed', migration['id'])
            self._end(ctx, states.FAILED, '%s: %s' % (type(e).__name__, e))

    def _end(self, ctx, target, reason):
        try:
            ctx.end_unmoved(target, reason)
        except exception.StateConflict as e:
            LOG.warning('Migration %s: not recording its end: %s', ctx.id, e)

    def _recover(self, migration):
        ctx = self._context(migration)
        mtype = plugins.load_class(plugins.MIGRATION, migration['migration_type'],
                                   'type of migration %s' % migration['id'])()
        try:
            self.backend.recover(mtype, ctx)
        except exception.StateConflict as e:
            LOG.warning('Migration %s: recovery lost a race: %s', migration['id'], e)
        except Exception as e:  # noqa: recovery must end somewhere a person can see
            LOG.exception('Migration %s: recovery failed', migration['id'])
            try:
                ctx.end_uncertain('recovery after a conductor restart failed: %s' % e,
                                  vm_location='unknown: check %s and %s' % (
                                      migration['source_host'], migration['dest_host']))
            except exception.StateConflict:
                pass


def _hosts_checked_lately(migration):
    """The agents' checks of the request still hold: a guest CPU or a shared storage
    does not change in seconds. A migration that waited long, or was held (an
    operator meant to change something first), is checked by the agents again."""
    return (not migration.get('hold_reason') and time.time() - migration['created_at']
            < CONF.conductor.host_checks_max_age)
