"""The conductor's RPC endpoint: requests from operators and reports from agents."""

import logging
import threading
import time

import oslo_messaging as messaging

from vmmig.agent import rpcapi as agent_rpcapi
from vmmig import arguments as args
from vmmig.backends import base as backends
from vmmig.conductor import agent_addresses
from vmmig.conductor import dispatcher
from vmmig.conductor import plans as conductor_plans
from vmmig.conductor import prechecks
from vmmig import conf
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception
from vmmig.ha import monitor
from vmmig import plugins
from vmmig import policy
from vmmig import rpc

LOG = logging.getLogger(__name__)
CONF = conf.CONF

# Times a request whose chosen destination filled up meanwhile is placed again.
ROOM_ATTEMPTS = 3

# Seconds the old agent process of a host has to answer before another takes the host.
TAKEOVER_PING_TIMEOUT = 5

# Job statistics key -> migration record column.
PROGRESS_FIELDS = {
    'data_total': 'bytes_total', 'data_processed': 'bytes_processed',
    'data_remaining': 'bytes_remaining', 'disk_total': 'disk_total',
    'disk_remaining': 'disk_remaining', 'memory_iteration': 'iteration',
    'downtime': 'downtime_ms',
}


class ConductorManager(conductor_plans.PlanEndpoints):
    # A literal of its own, not the client's constant: tests/unit/test_rpcapi.py
    # compares the two, which it could not if one were the other.
    target = messaging.Target(version='1.6')

    def __init__(self, name=None):
        self.name = name or CONF.host
        self.notifier = rpc.get_notifier('vmmig-conductor.%s' % self.name)
        self.addresses = agent_addresses.AgentAddresses()
        # Where the hosts and VMs come from and who moves them ([drivers] backend).
        self.backend = backends.load(self)
        self.agents = self.backend.hosts
        self.checks = prechecks.Prechecks(self.agents, self.backend)
        self.dispatcher = dispatcher.Dispatcher(self.name, self.notifier, self.backend,
                                                self.checks)
        self._progress_at = {}
        self._progress_lock = threading.Lock()
        self.init_plans()
        self.monitor = monitor.Monitor(self) if CONF.ha.enabled else None

    def start(self):
        self.backend.start()
        self.dispatcher.start()
        if self.monitor:
            self.monitor.start()

    def stop(self):
        if self.monitor:
            self.monitor.stop()
        self.dispatcher.stop()
        self.backend.stop()
        self.checks.close()

    # Operator requests ---------------------------------------------------------

    @args.accepts(instance=args.Name('instance'), migration_type=args.Text(),
                  host=args.Optional(args.Name('host')), options=args.OPTIONS,
                  hold_reason=args.Optional(args.HoldReason()),
                  requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:migration:create')
    def migrate_server(self, context, instance, migration_type, host=None, options=None,
                       hold_reason=None, requested_by=None):
        try:
            return self._plan_and_record(instance, migration_type, host, options,
                                         hold_reason, requested_by)
        except exception.InstanceNotFound:
            # A backend that discovers its VMs may not have seen this one yet: it looks
            # again (or says why it cannot), then the request is checked once more.
            self.backend.rediscover(instance)
            return self._plan_and_record(instance, migration_type, host, options,
                                         hold_reason, requested_by)

    def record_migration(self, instance, migration_type, host=None, options=None,
                         requested_by=None):
        """Check, place and record one migration, as an operator's request is (the HA
        monitor's evacuations come this way)."""
        return self._plan_and_record(instance, migration_type, host, options,
                                     requested_by=requested_by)

    def _plan_and_record(self, instance, migration_type, host, options, hold_reason=None,
                         requested_by=None, extra=None):
        """Check, then record. A destination the scheduler chose may fill up between
        the two (other requests recorded meanwhile): then it chooses again."""
        for attempt in range(1, ROOM_ATTEMPTS + 1):
            plan = self.checks.plan(instance, migration_type, host, options)
            try:
                return self._record(plan, host, hold_reason, requested_by, extra)
            except exception.NoRoom:
                if host or attempt == ROOM_ATTEMPTS:
                    raise
                LOG.info('%s: %s filled up meanwhile; choosing again', instance, plan.dest)

    def _record(self, plan, requested_host, hold_reason, requested_by, extra=None):
        values = dict(instance=plan.instance['name'], migration_type=plan.migration_type.name,
                      storage_mode=plan.storage.name, source_host=plan.source,
                      dest_host=plan.dest, requested_host=requested_host,
                      requested_by=requested_by, options=plan.options, **plan.room())
        # The record's link to what asked for it (an action of a plan: action_id).
        values.update(extra or {})
        if hold_reason:
            values.update(state=states.HELD, hold_reason=hold_reason, held_by=requested_by)
        # Checked a moment ago: a migration that needs no wait in the queue starts with
        # this plan; one that waits is checked again when it is claimed.
        migration = db.migration_create(values, unfinished=prechecks.UNFINISHED,
                                        claim=self.dispatcher.claim_on_create(),
                                        room_check=None if hold_reason else plan.room_check)
        LOG.info('Migration %s: %s of %s from %s to %s %s', migration['id'],
                 migration['migration_type'], migration['instance'], migration['source_host'],
                 migration['dest_host'], 'held: ' + hold_reason if hold_reason else
                 migration['state'])
        if migration['state'] == states.PREPARING:
            self.dispatcher.run_claimed(migration, plan)
        elif migration['state'] == states.QUEUED:
            self.dispatcher.wake()
        return migration

    @args.accepts(host=args.Name('host'), target_host=args.Optional(args.Name('host')),
                  options=args.OPTIONS, requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:host:evacuate')
    def evacuate_host(self, context, host, target_host=None, options=None,
                      requested_by=None):
        source = db.host_get(host)
        if target_host:
            db.host_get(target_host)
        names = [i['name'] for i in db.instance_list(host=source['name'])]
        if not names:
            raise exception.Invalid(reason='host %s has no instances to evacuate' % host)
        # One at a time, each recorded before the next is placed: the room the ones
        # before take on their destinations counts for the next.
        migrations, refusals = [], []
        for name in names:
            try:
                migrations.append(self._plan_and_record(name, 'evacuate', target_host,
                                                        options, requested_by=requested_by))
            except exception.PrecheckFailed as e:
                refusals.append(e)
        if refusals and not migrations:
            raise exception.PrecheckFailed(instance='the VMs of %s' % host, reasons=[
                '%s: %s' % (e.kwargs['instance'], '; '.join(e.reasons)) for e in refusals])
        # VMs that cannot be evacuated are reported with their reasons, not silently left.
        for e in refusals:
            migrations.append({'instance': e.kwargs.get('instance'), 'state': 'refused',
                               'reason': '; '.join(e.reasons)})
        return migrations

    @args.accepts(state=args.Optional(args.Choice(*states.ALL)),
                  instance=args.Optional(args.Name('instance')),
                  host=args.Optional(args.Name('host')))
    @policy.authorizes('vmmig:migration:list')
    def migration_list(self, context, state=None, instance=None, host=None):
        return db.migration_list(state=state, instance=instance, host=host)

    @args.accepts(migration=args.MigrationRef())
    @policy.authorizes('vmmig:migration:get')
    def migration_get(self, context, migration):
        return db.migration_get(migration)

    def _verb(self, verb, migration):
        record = db.migration_get(migration)
        if record['state'] not in states.VERBS[verb]:
            raise exception.InvalidState(action=verb, migration=record['id'],
                                         state=record['state'],
                                         allowed=', '.join(states.VERBS[verb]))
        return record

    @args.accepts(migration=args.MigrationRef(), reason=args.HoldReason(),
                  requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:migration:hold')
    def migration_hold(self, context, migration, reason, requested_by=None):
        record = self._verb('hold', migration)
        return db.migration_transition(record['id'], states.QUEUED, states.HELD,
                                       hold_reason=reason, held_by=requested_by)

    @args.accepts(migration=args.MigrationRef(), requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:migration:resume')
    def migration_resume(self, context, migration, requested_by=None):
        record = self._verb('resume', migration)
        resumed = db.migration_transition(record['id'], states.HELD, states.QUEUED)
        self.dispatcher.wake()
        return resumed

    @args.accepts(migration=args.MigrationRef(), requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:migration:abort')
    def migration_abort(self, context, migration, requested_by=None):
        record = self._verb('abort', migration)
        who = ' by %s' % requested_by if requested_by else ''
        if record['state'] in (states.QUEUED, states.HELD):
            try:
                return db.migration_transition(record['id'], (states.QUEUED, states.HELD),
                                               states.CANCELLED, vm_location=record[
                                                   'source_host'],
                                               reason='aborted%s before it started' % who)
            except exception.StateConflict:
                record = db.migration_get(record['id'])  # it just started: abort it running
        if not db.migration_update(record['id'], expected=(states.PREPARING, states.RUNNING),
                                   abort_requested=True,
                                   reason='aborted%s while it was %s' % (who, record['state'])):
            return self._verb('abort', record['id'])
        self.backend.abort(_type_of(record), record)
        return db.migration_get(record['id'])

    @args.accepts(migration=args.MigrationRef(), requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:migration:force_complete')
    def migration_force_complete(self, context, migration, requested_by=None):
        record = self._verb('force-complete', migration)
        if not _type_of(record).supports_job_control:
            raise exception.Invalid(reason='force-complete applies to live migrations; '
                                           'migration %s is %s' % (record['id'],
                                                                   record['migration_type']))
        db.migration_update(record['id'], expected=(states.RUNNING,),
                            force_complete_requested=True)
        self.backend.force_complete(record)
        return db.migration_get(record['id'])

    @args.accepts()
    @policy.authorizes('vmmig:host:list')
    def host_list(self, context):
        return self.with_drain_progress(db.host_list())

    @args.accepts(host=args.Optional(args.Name('host')))
    @policy.authorizes('vmmig:instance:list')
    def instance_list(self, context, host=None):
        return db.instance_list(host=host)

    @args.accepts(instance=args.Name('instance'), migration_type=args.Text())
    @policy.authorizes('vmmig:host:eligible')
    def host_eligible(self, context, instance, migration_type):
        try:
            return self.checks.eligibility(instance, migration_type)
        except exception.InstanceNotFound:
            self.backend.rediscover(instance)
            return self.checks.eligibility(instance, migration_type)

    # From the agents ------------------------------------------------------------

    @args.accepts(host=args.Name('host'), reported_at=args.TIME,
                  facts=args.Optional(args.FACTS), instances=args.Optional(args.INSTANCES))
    @policy.authorizes('vmmig:host:heartbeat')
    def heartbeat(self, context, host, reported_at, facts=None, instances=None):
        if facts is None:
            # Nothing changed on the host: only its liveness is news (1.1).
            if not db.host_alive(host, reported_at=reported_at):
                LOG.warning('Heartbeat of unknown host %s: its next full report will '
                            'register it', host)
            return
        db.host_heartbeat(host, facts, reported_at=reported_at)
        db.instances_report(host, instances, reported_at)

    @args.accepts(host=args.Name('host'), facts=args.FACTS, instances=args.INSTANCES,
                  reported_at=args.TIME, agent=args.Optional(args.Name('agent')))
    @policy.authorizes('vmmig:host:register')
    def agent_started(self, context, host, facts, instances, reported_at, agent=None):
        self._check_takeover(host, agent)
        db.host_heartbeat(host, facts, agent=agent, reported_at=reported_at)
        self.addresses.learn(host, agent)
        evacuated = set()
        for migration in db.migration_list(state=states.COMPLETED, host=host):
            if (migration['migration_type'] == 'evacuate'
                    and migration['source_host'] == host):
                evacuated.add(migration['instance'])
        # Only those that still live elsewhere: one evacuated back here is ours again.
        gone = sorted(name for name in evacuated
                      if _host_of(name) not in (None, host))
        db.instances_report(host, [i for i in instances if i['name'] not in gone],
                            reported_at)
        return gone

    def _check_takeover(self, host, agent):
        """A host changes agent process only when it is down or its old process is gone.

        Any client of the bus may call agent_started: a wrong one would replace the
        host's facts and VM list (VMs vanished from the database). The old process
        is asked (ping, a short timeout) before it is replaced.
        """
        try:
            record = db.host_get(host)
        except exception.HostNotFound:
            return
        old, new = record['agent'] or host, agent or host
        if old == new:
            return
        if record['state'] == 'up' and self._answers(old, host):
            LOG.warning('Host %s: agent process %s asked to register it while %s, which '
                        'serves it, still answers; refused', host, new, old)
            raise exception.HostServedElsewhere(host=host, server=old, agent=new)
        LOG.warning('Host %s: agent process %s takes it over from %s (%s)', host, new, old,
                    'the host was down' if record['state'] != 'up'
                    else '%s no longer answers' % old)

    def _answers(self, server, host):
        api = agent_rpcapi.AgentAPI(server_of=lambda _host: server)
        try:
            return api.ping(host, timeout=min(TAKEOVER_PING_TIMEOUT,
                                              CONF.conductor.heartbeat_timeout)) == host
        except Exception:  # noqa: a timeout, a process that no longer serves it: gone
            return False

    @args.accepts(migration_id=args.MigrationId(), stats=args.STATS)
    @policy.authorizes('vmmig:migration:progress')
    def migration_progress(self, context, migration_id, stats):
        now = time.monotonic()
        with self._progress_lock:
            last = self._progress_at.get(migration_id)
            final = stats.get('type') not in (None, 2)
            # None, not 0.0: the monotonic clock starts near 0 at boot.
            if (not final and last is not None
                    and now - last < CONF.conductor.progress_interval):
                return
            # An entry older than the interval limits nothing. Agents no longer send a
            # last report that would remove their migration's, so the old ones go here.
            for other in [m for m, at in self._progress_at.items()
                          if now - at >= CONF.conductor.progress_interval]:
                del self._progress_at[other]
            if not final:
                self._progress_at[migration_id] = now
        values = {column: stats[key] for key, column in PROGRESS_FIELDS.items()
                  if stats.get(key) is not None}
        if stats.get('memory_dirty_rate') is not None:
            values['dirty_rate'] = stats['memory_dirty_rate'] * stats.get(
                'memory_page_size', 4096)
        values['progress_at'] = time.time()
        if stats.get('postcopy'):
            values['postcopy'] = True
            try:
                db.migration_transition(migration_id, states.RUNNING, states.POSTCOPY,
                                        **values)
                return
            except exception.StateConflict:
                pass
        db.migration_update(migration_id, expected=(states.RUNNING, states.POSTCOPY),
                            **values)


def _type_of(record):
    return plugins.load_class(plugins.MIGRATION, record['migration_type'],
                              'type of migration %s' % record['id'])()


def _host_of(name):
    try:
        return db.instance_get(name)['host']
    except exception.InstanceNotFound:
        return None
