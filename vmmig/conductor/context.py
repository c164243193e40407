"""What a migration driver needs while it runs one migration.

The context moves the record from state to state (guarded), remembers the
undo steps in the order they were taken, and turns the outcome into exactly
one terminal state: completed, failed (rolled back, the VM where it was),
cancelled, or error (the VM's place uncertain, and the record says where it
was last seen).
"""

import logging
import time

import oslo_messaging as messaging

from vmmig.agent import rpcapi as agent_rpcapi
from vmmig import conf
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception

LOG = logging.getLogger(__name__)
CONF = conf.CONF

#: seconds an agent may hold a job_status answer while the job runs
STATUS_WAIT = 5.0


class MigrationContext(object):

    def __init__(self, migration, storage, notifier, agents=None, sender=None, backend=None):
        """``sender``: an executor of one thread for notify_soon; ``agents``: what the
        backend asks the hosts through (the agents' RPC client on the default one);
        ``backend``: the backend that carries the migration out."""
        self.migration = migration
        self.storage = storage
        self.notifier = notifier
        self.agents = agents or agent_rpcapi.AgentAPI()
        self.backend = backend
        self.sender = sender
        self._sending = None
        self._undo = []
        #: set once the guest is on the destination (see vm_moved)
        self.moved = False
        #: the VM as its source agent showed it to the checks that just passed
        self.checked_instance = None

    @property
    def id(self):
        return self.migration['id']

    def source_instance(self):
        """The VM on the source: what the checks just saw, else asked of the agent."""
        instance, self.checked_instance = self.checked_instance, None
        if instance is None:
            instance = self.agents.get_instance(self.migration['source_host'],
                                                self.migration['instance'])
        return instance

    def refresh(self):
        self.migration = db.migration_get(self.id)
        return self.migration

    # State ---------------------------------------------------------------

    def transition(self, target, **values):
        """Guarded by state and by owner: a conductor that lost the migration to another
        (which adopted it while this one looked dead) cannot move it any more."""
        expected = [s for s in states.sources_of(target) if s in states.ACTIVE]
        self.migration = db.migration_transition(self.id, expected, target,
                                                 owner=self.migration['owner'], **values)
        return self.migration

    def check_abort(self):
        """Raise MigrationCancelled when an operator asked to abort."""
        record = db.migration_get(self.id)
        if record['abort_requested']:
            raise exception.MigrationCancelled(migration=self.id,
                                               reason=record['reason'] or 'aborted on request')

    def start_running(self, **values):
        """preparing -> running, unless an operator asked to abort meanwhile: then
        MigrationCancelled (one guarded update checks both)."""
        self.migration = db.migration_transition(
            self.id, states.PREPARING, states.RUNNING, owner=self.migration['owner'],
            unless_abort=True, **values)
        return self.migration

    # Undo ------------------------------------------------------------------

    def on_rollback(self, description, func, *args, **kwargs):
        self._undo.append((description, func, args, kwargs))

    def forget_rollback(self):
        self._undo = []

    def vm_moved(self):
        """The point of no return: the guest is on the destination. Nothing is undone
        after this, and no ending may say the VM stayed on the source."""
        self._undo = []
        self.moved = True

    def rollback(self):
        """Undo in reverse order; every step is tried, the failures are returned."""
        failures = []
        while self._undo:
            description, func, args, kwargs = self._undo.pop()
            try:
                func(*args, **kwargs)
            except Exception as e:  # noqa: one failed undo must not stop the others
                LOG.exception('Migration %s: rollback step "%s" failed', self.id, description)
                failures.append('%s: %s' % (description, e))
        return failures

    # Endings ---------------------------------------------------------------

    def complete(self, instance, **values):
        dest = self.migration['dest_host']
        expected = [s for s in states.sources_of(states.COMPLETED) if s in states.ACTIVE]
        self.migration = db.migration_complete(
            self.id, expected, self.migration['owner'], self.migration['instance'], dest,
            instance, vm_location=dest, **values)
        self.notify('end')

    def end_unmoved(self, target, reason, **values):
        """failed or cancelled after a rollback; error if the rollback broke.

        ``values``: more columns for the same update (the job's final figures).
        Past vm_moved, an error that says where the VM went instead.
        """
        if self.moved:
            dest = self.migration['dest_host']
            return self.end_uncertain(
                '%s (after the VM moved to %s: check it there and what is left on %s)'
                % (reason, dest, self.migration['source_host']),
                vm_location='%s (moved; the migration did not finish)' % dest, **values)
        failures = self.rollback()
        if failures:
            reason = '%s; rollback incomplete: %s' % (reason, '; '.join(failures))
            self.transition(states.ERROR, reason=reason, vm_location='uncertain: rollback '
                            'failed, check %s and %s' % (self.migration['source_host'],
                                                         self.migration['dest_host']),
                            **values)
        else:
            self.transition(target, reason=reason, vm_location=self.migration['source_host'],
                            **values)
        self.notify('error')

    def end_uncertain(self, reason, vm_location, **values):
        self.transition(states.ERROR, reason=reason, vm_location=vm_location, **values)
        self.notify('error')

    def notify_soon(self, event):
        """Send the notification from the sender's thread, with the record as it is now:
        the migration goes on meanwhile. The next notify waits for it, so a listener
        still hears a migration's events in order."""
        if self.sender is None:
            return self.notify(event)
        self._sending = self.sender.submit(self._send, event, dict(self.migration))

    def notify(self, event):
        if self._sending is not None:
            self._sending.result()
            self._sending = None
        self._send(event, dict(self.migration))

    def _send(self, event, payload):
        event_type = 'vmmig.migration.%s.%s' % (payload['migration_type'], event)
        try:
            if event == 'error':
                self.notifier.error({}, event_type, payload)
            else:
                self.notifier.info({}, event_type, payload)
        except Exception:  # noqa: a lost notification must not break a migration
            LOG.warning('Could not emit %s for migration %s', event_type, self.id,
                        exc_info=True)

    # Agents ----------------------------------------------------------------

    def follow_job(self, host):
        """Poll the source agent's job until it ends; 'unknown' if the agent lost it."""
        interval = CONF.live_migration.monitor_interval
        silent_since = None
        # A long poll: the agent answers as soon as the job ends, so the end is not
        # learnt up to an interval late; an agent that cannot wait is polled instead.
        wait = max(interval, STATUS_WAIT)
        while True:
            asked = time.monotonic()
            try:
                status = self.agents.job_status(host, self.id, wait=wait, timeout=int(
                    wait + max(5, CONF.conductor.rpc_timeout / 4)))
                silent_since = None
            except messaging.MessagingTimeout:
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > CONF.conductor.heartbeat_timeout:
                    return {'status': 'unknown', 'error': 'the agent of %s stopped answering'
                            % host, 'stats': {}}
                continue
            if status['status'] != 'running':
                return status
            time.sleep(max(0.0, interval - (time.monotonic() - asked)))

    def find(self, host):
        """The instance on ``host``, None if absent, 'unreachable' if the agent is silent."""
        try:
            return self.agents.find_instance(host, self.migration['instance'])
        except messaging.MessagingTimeout:
            return 'unreachable'
