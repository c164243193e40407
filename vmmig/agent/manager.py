"""The host agent's RPC endpoint: the host-side steps of every migration.

The agent owns one hypervisor driver. Long work (a live migration job) runs
in a thread of the agent and is followed by the conductor through
``job_status``, so a conductor that restarts can pick the job up again.
"""

import collections
import logging
import os
import threading
import time

import oslo_messaging as messaging

from vmmig.agent import transfer
from vmmig import arguments as args
from vmmig.conductor import rpcapi as conductor_rpcapi
from vmmig import conf
from vmmig import context as vcontext
from vmmig.hypervisor import base
from vmmig.hypervisor import monitor
from vmmig import exception
from vmmig import plugins

LOG = logging.getLogger(__name__)
CONF = conf.CONF

# Finished jobs kept for job_status, so a conductor that asks late still learns the outcome.
FINISHED_JOBS_KEPT = 256
# The longest job_status holds its answer, whatever the caller asks.
MAX_STATUS_WAIT = 30.0


class AgentManager(object):
    # A literal of its own, not the client's constant: tests/unit/test_rpcapi.py
    # compares the two, which it could not if one were the other.
    target = messaging.Target(version='1.3')

    def __init__(self, host, driver, agent=None):
        """``agent``: the RPC server this host is served by, when not its own name."""
        self.host = host
        self.agent = agent
        self.driver = driver
        # The agent speaks for itself, whoever's request it serves (the service role).
        self.conductor = conductor_rpcapi.ConductorAPI(
            context=lambda: vcontext.service_context('vmmig-agent-%s' % (agent or host)))
        self._jobs = {}
        self._ended = {}  # migration id -> Event set when its job has ended
        self._finished = collections.OrderedDict()
        self._requests = {}
        self._offers = {}
        self._lock = threading.Lock()
        # (facts, instances) of the last full report, and when it was sent
        self._reported = None
        self._reported_at = 0.0
        # The health its monitor last told the conductor (vmmig.health), and the monitor.
        self._health = None
        self._health_monitor = None

    # Life cycle --------------------------------------------------------------

    def init_host(self):
        self.driver.init_host()

    def snapshot(self):
        reported_at = time.time()
        return dict(host=self.host, facts=self._facts(),
                    instances=self.driver.list_instances(), reported_at=reported_at)

    def register(self, timeout=None):
        """Tell the conductor we are here; forget VMs that were evacuated while we were down."""
        snapshot = self.snapshot()
        evacuated = self.conductor.agent_started(timeout=timeout, agent=self.agent,
                                                 **snapshot)
        # A full report: the heartbeats that follow report only what changes.
        self._reported = (snapshot['facts'], snapshot['instances'])
        self._reported_at = time.monotonic()
        for name in evacuated:
            LOG.warning('Instance %s was evacuated from %s while it was down; '
                        'removing its definition here (shared files are kept)', name, self.host)
            try:
                # Its volumes are attached to the new host now: let go of them here.
                self.driver.disconnect_volumes(self.driver.get_instance(name))
            except exception.InstanceNotFound:
                pass
            self.driver.undefine(name, delete_local_files=False)
        return evacuated

    def heartbeat(self):
        """A full report when the host changed (or now and then), else a light one.

        The full report makes the conductor compare every instance of the host; with
        a hundred hosts that is most of what an idle conductor does.
        """
        snapshot = self.snapshot()
        seen = (snapshot['facts'], snapshot['instances'])
        due = time.monotonic() - self._reported_at >= CONF.agent.full_report_interval
        full = self.conductor.heartbeat(changed=seen != self._reported or due, **snapshot)
        if full:
            self._reported, self._reported_at = seen, time.monotonic()
        return full

    def check_health(self):
        """Ask the health monitor; tell the conductor when the answer changed."""
        if self._health_monitor is None:
            self._health_monitor = plugins.load_class(
                plugins.HEALTH, CONF.ha.health_monitor, '[ha] health_monitor')(CONF, self.host)
        health = self._health_monitor.status()
        if health == self._health:
            return None
        status, reason = health
        if self._health is not None or status != 'ok':
            LOG.warning('Host %s reports it is %s%s', self.host, status,
                        ': %s' % reason if reason else '')
            answer = self.conductor.host_health(self.host, status, reason)
        else:
            answer = None  # healthy from the start: nothing to say
        self._health = health
        return answer

    # Inventory and checks ------------------------------------------------------

    @args.accepts()
    def ping(self, context):
        return self.host

    @args.accepts()
    def host_facts(self, context):
        return self._facts()

    def _facts(self):
        # Where the agent fetches a cold migration's files from: the source's offer
        # accepts that address only.
        return dict(self.driver.host_facts(), transfer_address=CONF.agent.transfer_address)

    @args.accepts(instance=args.Name('instance'))
    def get_instance(self, context, instance):
        return self.driver.get_instance(instance)

    @args.accepts(instance=args.Name('instance'))
    def find_instance(self, context, instance):
        try:
            return self.driver.get_instance(instance)
        except exception.InstanceNotFound:
            return None

    @args.accepts(instance=args.INSTANCE, source_facts=args.FACTS)
    def check_destination(self, context, instance, source_facts):
        return self.driver.check_cpu_compatible(instance, source_facts)

    @args.accepts()
    def create_storage_probe(self, context):
        return self.driver.create_storage_probe()

    @args.accepts(token=args.PROBE_TOKEN)
    def check_storage_probe(self, context, token):
        return self.driver.check_storage_probe(token)

    @args.accepts(token=args.PROBE_TOKEN)
    def remove_storage_probe(self, context, token):
        return self.driver.remove_storage_probe(token)

    # Live migration --------------------------------------------------------------

    @args.accepts(instance=args.INSTANCE, migration=args.MIGRATION)
    def prepare_live_incoming(self, context, instance, migration):
        return self.driver.prepare_live_incoming(instance, migration)

    @args.accepts(instance=args.INSTANCE, migration=args.MIGRATION,
                  dest_info=args.DEST_INFO, settings=args.SETTINGS)
    def start_live_migration(self, context, instance, migration, dest_info, settings):
        migration_id = migration['id']
        with self._lock:
            if migration_id in self._jobs:
                raise exception.Invalid(reason='migration %s already runs on %s'
                                        % (migration_id, self.host))
            job = self.driver.live_migrate(instance, dest_info, settings)
            self._jobs[migration_id] = job
            self._ended[migration_id] = threading.Event()
        thread = threading.Thread(target=self._run_job, name='vmmig-job-%s' % migration_id,
                                  args=(migration_id, instance, job, settings), daemon=True)
        thread.start()
        LOG.info('Migration %s of %s: job started to %s', migration_id, instance['name'],
                 dest_info.get('host'))
        return {'status': base.JOB_RUNNING}

    def _run_job(self, migration_id, instance, job, settings):
        progress = monitor.RateLimited(
            lambda stats: self._report_progress(migration_id, stats),
            CONF.conductor.progress_interval)
        # What the timeouts scale with, known before the hypervisor reports any figure.
        data_bytes = instance.get('memory_mb', 0) * 1024 * 1024
        if settings.get('block_migration'):
            data_bytes += sum(d.get('capacity') or int(d.get('size_gb', 0) * 1024 ** 3)
                              for d in instance.get('disks', []) if d['location'] == 'local')
        policy = dict(settings['policy'], data_bytes=data_bytes)
        try:
            outcome = monitor.Monitor(
                job, policy, on_progress=progress,
                requests=lambda: self._requests.pop(migration_id, None),
                interval=CONF.live_migration.monitor_interval).run()
            # No last progress report: the final figures go with the outcome, which the
            # conductor writes in the same update that ends the record.
        except Exception as e:  # noqa: the outcome must be recorded whatever broke
            LOG.exception('Migration %s of %s: the job monitor failed', migration_id,
                          instance['name'])
            outcome = {'status': job.status if job.status != base.JOB_RUNNING
                       else base.JOB_FAILED, 'error': str(e), 'stats': {}, 'actions': []}
        LOG.info('Migration %s of %s: job %s %s', migration_id, instance['name'],
                 outcome['status'], outcome['error'] or '')
        with self._lock:
            self._jobs.pop(migration_id, None)
            self._finished[migration_id] = outcome
            while len(self._finished) > FINISHED_JOBS_KEPT:
                self._finished.popitem(last=False)
            ended = self._ended.pop(migration_id, None)
        if ended is not None:
            ended.set()

    def _report_progress(self, migration_id, stats):
        try:
            self.conductor.migration_progress(migration_id, stats)
        except Exception:  # noqa: progress is best effort; the job must go on
            LOG.warning('Could not report progress of migration %s', migration_id,
                        exc_info=True)

    @args.accepts(migration_id=args.MigrationId(),
                  wait=args.Optional(args.Number(0, 24 * 3600)))
    def job_status(self, context, migration_id, wait=None):
        """The job's status; with ``wait``, not before it ends or ``wait`` s have passed."""
        if wait:
            with self._lock:
                ended = self._ended.get(migration_id)
            if ended is not None:
                ended.wait(min(float(wait), MAX_STATUS_WAIT))
        with self._lock:
            job = self._jobs.get(migration_id)
            if job is not None:
                return {'status': base.JOB_RUNNING, 'error': None, 'stats': job.stats()}
            if migration_id in self._finished:
                return self._finished[migration_id]
        return {'status': 'unknown', 'error': None, 'stats': {}}

    @args.accepts(migration_id=args.MigrationId(),
                  action=args.Choice('abort', 'force-complete'))
    def job_control(self, context, migration_id, action):
        with self._lock:
            if migration_id not in self._jobs:
                return False
            self._requests[migration_id] = action
        return True

    @args.accepts(instance=args.INSTANCE, migration=args.MIGRATION)
    def finish_live_incoming(self, context, instance, migration):
        return self.driver.finish_live_incoming(instance, migration)

    @args.accepts(instance=args.INSTANCE, migration=args.MIGRATION)
    def rollback_live_incoming(self, context, instance, migration):
        return self.driver.rollback_live_incoming(instance, migration)

    @args.accepts(instance=args.INSTANCE)
    def mark_uncertain(self, context, instance):
        return self.driver.mark_uncertain(instance['name'])

    @args.accepts(instance=args.INSTANCE, migration=args.MIGRATION)
    def cleanup_live_outgoing(self, context, instance, migration):
        return self.driver.cleanup_live_outgoing(instance, migration)

    # Volumes -----------------------------------------------------------------------

    @args.accepts(instance=args.INSTANCE)
    def connect_volumes(self, context, instance):
        return self.driver.connect_volumes(instance)

    @args.accepts(instance=args.INSTANCE)
    def disconnect_volumes(self, context, instance):
        return self.driver.disconnect_volumes(instance)

    # Power and cold migration --------------------------------------------------------

    @args.accepts(instance=args.Name('instance'), graceful_timeout=args.Int())
    def power_off(self, context, instance, graceful_timeout):
        return self.driver.power_off(instance, graceful_timeout)

    @args.accepts(instance=args.Name('instance'))
    def power_on(self, context, instance):
        return self.driver.power_on(instance)

    @args.accepts(instance=args.Name('instance'), migration_id=args.MigrationId(),
                  peer=args.Optional(args.Text()))
    def offer_files(self, context, instance, migration_id, peer=None):
        """Offer the local files of ``instance``, each with its size and SHA-256 for the
        conductor to record, each once to ``peer`` (the receiving agent's address)."""
        exported = self.driver.cold_export(instance)
        # Read once more here: the receiver checks against these, not the stream's own.
        files = [dict(f, sha256=transfer.sha256_of(f['path'])) for f in exported['files']]
        offer = transfer.Offer(files, CONF.agent.transfer_address, peer=peer,
                               bandwidth=CONF.cold_migration.bandwidth)
        with self._lock:
            old = self._offers.pop(migration_id, None)
            self._offers[migration_id] = offer
        if old:
            old.close()
        return dict(offer.describe(), instance=exported['instance'])

    @args.accepts(migration_id=args.MigrationId())
    def withdraw_offer(self, context, migration_id):
        """Stop serving the files of ``migration_id``, copies under way included (an
        abort cuts the copy: the receiver fails and removes what it wrote)."""
        with self._lock:
            offer = self._offers.pop(migration_id, None)
        if offer:
            offer.close()
        return offer is not None

    @args.accepts(instance=args.INSTANCE, offer=args.OFFER)
    def receive_instance(self, context, instance, offer):
        paths = self.driver.cold_import_paths(instance, offer['files'])
        for spec in offer['files']:
            if os.path.exists(paths[spec['id']]):
                raise exception.HypervisorError(
                    host=self.host, reason='%s already exists; refusing to overwrite it'
                                           % paths[spec['id']])
        checksums = {}
        try:
            for spec in offer['files']:
                checksums[spec['id']] = transfer.fetch(
                    offer, spec['id'], paths[spec['id']],
                    source_address=CONF.agent.transfer_address)
            defined = self.driver.cold_define(instance, offer['files'])
        except Exception:
            # Only what this call wrote: the check above proved none of it was there.
            for file_id in checksums:
                os.unlink(paths[file_id])
            raise
        return {'instance': defined, 'checksums': checksums}

    @args.accepts(instance=args.Name('instance'), delete_local_files=args.Bool())
    def undefine(self, context, instance, delete_local_files):
        return self.driver.undefine(instance, delete_local_files)

    # Evacuation ----------------------------------------------------------------------

    @args.accepts(instance=args.INSTANCE)
    def rebuild(self, context, instance):
        return self.driver.rebuild(instance)
