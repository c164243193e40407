"""Each migration type carried out through Nova's API and followed to its end there.

live: os-migrateLive (the requested host, or Nova's scheduler; block_migration
'auto'), its progress from the server-migrations API, abort and force-complete.
cold: migrate, then the confirmation once Nova waits in VERIFY_RESIZE (an abort
asked by then reverts it instead). evacuate: once the fencing driver confirmed
the host cannot run the VM, its nova-compute forced down, then evacuate.

Nova's refusals and failures end the record failed (the VM where Nova shows it)
with Nova's words; whatever the ending, the record and the instance record say
what Nova's view of the server says (host, status, task state).
"""

import logging
import time

from vmmig.backends.nova import views
from vmmig import conf
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception
from vmmig import plugins

LOG = logging.getLogger(__name__)
CONF = conf.CONF

#: seconds Nova may take to create its migration record for a request it accepted
START_GRACE = 60.0
#: seconds a server may keep a task state after its migration record ended
SETTLE_TIMEOUT = 60.0


class NovaMoves(object):

    def __init__(self, backend):
        self.backend = backend
        self.nova = backend.nova

    # Entry points --------------------------------------------------------------------

    def execute(self, mtype, ctx):
        m = ctx.migration
        uuid = self.backend.uuid_of(m['instance'])
        # Nova's migrations of this server before the request: ours is a newer one.
        before = _last_id(self.nova.migrations(uuid))
        if mtype.name == 'evacuate':
            self._fence(ctx)
        elif mtype.name == 'live':
            ctx.start_running(start_power_state=ctx.source_instance()['power_state'])
        else:
            ctx.start_running()
        ask = {'live': self.nova.live_migrate, 'cold': self.nova.migrate,
               'evacuate': self.nova.evacuate}[mtype.name]
        try:
            ask(uuid, m['requested_host'], m['instance'])
        except exception.NovaRefused as e:
            return self._end(ctx, uuid, states.FAILED, e.message)
        LOG.info('Migration %s: Nova was asked to %s %s%s', ctx.id, mtype.name,
                 m['instance'], ' to %s' % m['requested_host'] if m['requested_host']
                 else ' (its scheduler chooses the host)')
        self.follow(mtype.name, ctx, uuid, before)

    def recover(self, mtype, ctx, cause='the conductor stopped during the migration'):
        """Take up a migration whose conductor stopped: follow it in Nova, or end it
        as Nova ended it."""
        m = ctx.migration
        uuid = self.backend.uuid_of(m['instance'])
        if m['state'] == states.PREPARING:
            # Nova is asked only once the record is running.
            return self._end(ctx, uuid, states.FAILED, '%s, before Nova was asked' % cause)
        ours = views.newest(self.nova.migrations(uuid), mtype.name, source=m['source_host'])
        if ours is None:
            return self._end(ctx, uuid, None, '%s, and Nova shows no %s of it from %s'
                             % (cause, views.MIGRATION_TYPES[mtype.name], m['source_host']))
        LOG.warning('Migration %s: %s; following Nova migration %s (%s)', ctx.id, cause,
                    ours['id'], ours['status'])
        self.follow(mtype.name, ctx, uuid, ours['id'] - 1, note=cause)

    def job_control(self, record, action):
        """Abort or force-complete the live migration Nova runs for ``record``; False
        when Nova has none it can be asked of yet (the loop that follows it asks later)."""
        uuid = self.backend.uuid_of(record['instance'])
        ours = views.newest(self.nova.migrations(uuid), 'live', source=record['source_host'])
        allowed = views.LIVE_ABORTABLE if action == 'abort' else ('running',)
        if ours is None or ours['status'] not in allowed:
            LOG.info('Migration %s: Nova has no live migration to %s yet; the request is '
                     'kept in the record', record['id'], action)
            return False
        return self._job_control(record, uuid, ours['id'], action)

    def _job_control(self, record, uuid, migration_id, action):
        ask = self.nova.abort if action == 'abort' else self.nova.force_complete
        try:
            ask(uuid, migration_id, record['instance'])
        except exception.NovaRefused as e:
            LOG.info('Migration %s: %s; asked again later', record['id'], e)
            return False
        LOG.info('Migration %s: Nova was asked to %s live migration %s', record['id'],
                 action, migration_id)
        return True

    # Following -------------------------------------------------------------------

    def follow(self, kind, ctx, uuid, after_id, note=None):
        """Poll Nova's migration of the server until it ends, then end the record."""
        m = ctx.migration
        asked = time.monotonic()
        deadline = asked + CONF.nova.operation_timeout
        sent = set()
        ours = silent = None
        while True:
            try:
                ours = views.newest(self.nova.migrations(uuid), kind, after_id,
                                    source=m['source_host'])
                record = ctx.refresh()
                if ours is None:
                    server = self.nova.server(uuid, instance=m['instance'])
                    if (time.monotonic() - asked > START_GRACE
                            and not server.get('OS-EXT-STS:task_state')):
                        return self._end(ctx, uuid, states.FAILED, _with(
                            note, 'Nova accepted the request but started no migration (%s)'
                            % views.server_line(server)), server=server)
                elif self._step(kind, ctx, uuid, ours, record, sent):
                    return self._finish(kind, ctx, uuid, ours, note)
                silent = None
            except exception.NovaUnavailable as e:
                # Nova goes on moving the VM while it does not answer: wait for it.
                if silent is None:
                    LOG.warning('Migration %s: Nova does not answer (%s); waiting for it',
                                ctx.id, e)
                silent = e
            if time.monotonic() > deadline:
                if silent is not None:
                    return ctx.end_uncertain(_with(
                        note, 'Nova did not answer within [nova] operation_timeout (%d s): '
                        '%s' % (CONF.nova.operation_timeout, silent)),
                        vm_location='unknown: ask Nova (last seen on %s)' % m['source_host'])
                server = self.nova.server(uuid, instance=m['instance'])
                return self._end(ctx, uuid, states.ERROR, _with(
                    note, 'Nova did not finish it within [nova] operation_timeout (%d s): '
                    'its migration %s is %s; %s' % (
                        CONF.nova.operation_timeout, ours and ours['id'],
                        ours and ours['status'], views.server_line(server))), server=server)
            time.sleep(CONF.nova.poll_interval)

    def _step(self, kind, ctx, uuid, ours, record, sent):
        """One look at Nova's migration under way; True once it has ended."""
        status = ours['status']
        if kind == 'live':
            if status not in views.LIVE_UNDER_WAY:
                return True
            for flag, action, when in (
                    ('abort_requested', 'abort', views.LIVE_ABORTABLE),
                    ('force_complete_requested', 'force-complete', ('running',))):
                # A request that came before Nova's migration could take it.
                if record[flag] and action not in sent and status in when:
                    if self._job_control(record, uuid, ours['id'], action):
                        sent.add(action)
            if status == 'running':
                self._progress(ctx, uuid, ours['id'])
            return False
        if kind == 'cold':
            if status == views.COLD_FINISHED:
                server = self.nova.server(uuid, instance=record['instance'])
                if server.get('status') == 'VERIFY_RESIZE' and 'confirm' not in sent:
                    sent.add('confirm')
                    if record['abort_requested']:
                        LOG.info('Migration %s: aborted; reverting it in Nova', ctx.id)
                        self.nova.revert_resize(uuid, record['instance'])
                    else:
                        self.nova.confirm_resize(uuid, record['instance'])
                return False
            return status in (views.COLD_DONE | views.COLD_REVERTED | views.FAILED
                              | views.CANCELLED)
        return status in views.EVACUATION_DONE | views.FAILED | views.CANCELLED

    def _progress(self, ctx, uuid, migration_id):
        shown = self.nova.live_migration(uuid, migration_id)
        values = views.progress(shown or {})
        if values:
            db.migration_update(ctx.id, expected=(states.RUNNING,), progress_at=time.time(),
                                **values)

    def _finish(self, kind, ctx, uuid, ours, note):
        m = ctx.migration
        server = self._settled(uuid, m['instance'])
        status, host = ours['status'], views.host_of(server)
        done = {'live': views.LIVE_DONE, 'cold': views.COLD_DONE,
                'evacuate': views.EVACUATION_DONE}[kind]
        if status in done:
            if host == m['source_host'] or server.get('status') == 'ERROR':
                return self._end(ctx, uuid, states.ERROR, _with(
                    note, 'Nova says its migration %s is %s, but %s' % (
                        ours['id'], status, views.server_line(server))), server=server)
            return self._complete(ctx, uuid, server, note)
        record = ctx.refresh()
        if status in views.CANCELLED | views.COLD_REVERTED:
            if record['abort_requested']:
                return self._end(ctx, uuid, states.CANCELLED, _with(
                    note, '%s; Nova %s it' % (record['reason'] or 'aborted on request',
                                              status)), server=server)
            return self._end(ctx, uuid, states.FAILED, _with(
                note, 'Nova %s its migration %s without vmmig asking (%s)' % (
                    status, ours['id'], views.server_line(server))), server=server)
        why = self._why_failed(uuid, kind)
        return self._end(ctx, uuid, states.FAILED, _with(
            note, 'Nova ended its migration %s %s: %s' % (
                ours['id'], status, why or views.server_line(server))), server=server)

    def _settled(self, uuid, name):
        """The server once Nova has cleared its task state (or as it is after a while)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            server = self.nova.server(uuid, instance=name)
            if not server.get('OS-EXT-STS:task_state') or time.monotonic() > deadline:
                return server
            time.sleep(CONF.nova.poll_interval)

    def _why_failed(self, uuid, kind):
        """Nova's words for the failure: the failed events of the latest action of this
        kind (their details, 2.84), or None."""
        wanted = {'live': 'live-migration', 'cold': 'migrate', 'evacuate': 'evacuate'}[kind]
        try:
            actions = [a for a in self.nova.actions(uuid) if a.get('action') == wanted]
            if not actions:
                return None
            latest = max(actions, key=lambda a: a.get('start_time') or '')
            return views.action_failure(self.nova.action(uuid, latest['request_id']))
        except exception.VmmigException as e:
            LOG.warning('Could not read why Nova failed the %s of %s: %s', kind, uuid, e)
            return None

    # Endings ---------------------------------------------------------------------

    def _complete(self, ctx, uuid, server, note):
        m = ctx.migration
        spec = views.instance(server, m['instance'], CONF.nova.shared_instances_storage)
        host = spec['host']
        values = {}
        if host != m['dest_host']:
            # Nova's scheduler chose another host than vmmig's checks ranked first.
            LOG.info('Migration %s: Nova placed %s on %s', ctx.id, m['instance'], host)
            db.migration_update(ctx.id, dest_host=host)
            ctx.refresh()
        if note:
            values['reason'] = '%s; completed in Nova (%s)' % (note, views.server_line(server))
        elif m['migration_type'] == 'evacuate':
            values['reason'] = ctx.refresh()['reason']
        ctx.vm_moved()
        ctx.complete(spec, **values)

    def _end(self, ctx, uuid, target, reason, server=None):
        """End the record as ``target`` (None: as Nova shows the server: completed if it
        left the source, else failed) where Nova shows the VM, and record the VM so."""
        m = ctx.migration
        try:
            server = server or self.nova.server(uuid, instance=m['instance'])
        except exception.VmmigException as e:
            return ctx.end_uncertain('%s; and Nova could not be asked where it is: %s'
                                     % (reason, e), vm_location='unknown: ask Nova')
        spec = views.instance(server, m['instance'], CONF.nova.shared_instances_storage)
        host = spec['host']
        if target is None:
            if host != m['source_host']:
                return self._complete(ctx, uuid, server, '%s; Nova shows it on %s: '
                                      'completed by reconciliation' % (reason, host))
            target = states.FAILED
        if target == states.FAILED and host != m['source_host']:
            # Failed says the VM stayed where it was: Nova shows otherwise.
            target, reason = states.ERROR, '%s; %s' % (reason, views.server_line(server))
        LOG.warning('Migration %s of %s: %s: %s', ctx.id, m['instance'], target, reason)
        ctx.forget_rollback()
        ctx.transition(target, reason=reason, vm_location='%s (%s)' % (
            host, (server.get('status') or '').lower()))
        if host:
            db.instance_seen(m['instance'], host, spec)
        ctx.notify('error')

    def _fence(self, ctx):
        """The fencing driver confirms the source cannot run the VM; then its
        nova-compute is forced down in Nova, which evacuates only from a down host."""
        m = ctx.migration
        host = db.host_get(m['source_host'])
        fenced, how = plugins.fencing().confirm(host)
        if not fenced:
            raise exception.PrecheckFailed(instance=m['instance'], reasons=[
                'source host %s is not fenced: %s' % (host['name'], how)])
        service = (host['facts'].get('nova') or {})
        if not service.get('forced_down'):
            self.nova.force_down(service.get('service_id'), host['name'])
            how = '%s; nova-compute on %s forced down in Nova' % (how, host['name'])
        ctx.start_running(reason='fenced: %s' % how)


def _last_id(migrations):
    return max((m['id'] for m in migrations), default=0)


def _with(note, reason):
    return '%s; %s' % (note, reason) if note else reason
