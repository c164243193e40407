"""Live migration: pre-copy while the VM runs, a short blackout, resume on the destination."""

from concurrent import futures
import logging

from vmmig import conf
from vmmig.conf import migration as migration_opts
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception
from vmmig.hypervisor import base as hv
from vmmig import limits
from vmmig.migration import base

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class LiveMigration(base.MigrationType):
    name = 'live'
    supports_job_control = True
    options = {
        'max_downtime': base.Option(int, 'allowed blackout in ms',
                                    maximum=limits.MAX_DOWNTIME_MS_MAX),
        'downtime_steps': base.Option(int, 'steps in which the allowed blackout rises to '
                                           'max_downtime'),
        'bandwidth': base.Option(int, 'cap of the migration stream in MiB/s',
                                 maximum=limits.BANDWIDTH_MIBPS_MAX),
        'auto_converge': base.Option(bool, 'throttle the guest CPU when pre-copy does not '
                                           'converge'),
        'post_copy': base.Option(bool, 'permit post-copy'),
        'completion_timeout': base.Option(int, 'seconds per GiB before the timeout action'),
        'timeout_action': base.Option(str, 'abort, force_complete_postcopy or pause'),
    }

    def validate_options(self, options):
        clean = super().validate_options(
            {k: v for k, v in (options or {}).items() if k != 'timeout_action'})
        action = (options or {}).get('timeout_action')
        if action is not None:
            if action not in migration_opts.TIMEOUT_ACTIONS:
                raise exception.InvalidOption(
                    option='timeout_action', value=action,
                    reason='possible values: %s' % ', '.join(migration_opts.TIMEOUT_ACTIONS))
            clean['timeout_action'] = action
        return clean

    def instance_reasons(self, instance, options):
        if instance['power_state'] not in ('running', 'paused'):
            return ['%s is %s; live migration moves a running or paused VM (use a cold '
                    'migration)' % (instance['name'], instance['power_state'])]
        return []

    def required_capabilities(self, storage, options):
        # From the settings the job gets, so that what is checked is what is asked for.
        settings = self.settings(storage, options)
        needed = {'live_migration': 'a live migration'}
        if settings['block_migration']:
            needed['block_migration'] = 'copying its local disks live (block migration)'
        for capability, option, what in (('post_copy', 'permit_post_copy', 'post-copy'),
                                         ('auto_converge', 'permit_auto_converge',
                                          'auto-converge')):
            if settings[capability]:
                needed[capability] = '%s (%s)' % (what, 'asked for by the option %s'
                                                  % capability if capability in options
                                                  else 'permitted by [live_migration] %s'
                                                  % option)
        return needed

    @staticmethod
    def settings(storage, options):
        lm = CONF.live_migration
        post_copy = options.get('post_copy', lm.permit_post_copy)
        max_downtime = options.get('max_downtime', lm.max_downtime)
        return {
            'max_downtime_ms': max_downtime,
            'bandwidth_mibps': options.get('bandwidth', lm.bandwidth),
            'auto_converge': options.get('auto_converge', lm.permit_auto_converge),
            'post_copy': post_copy,
            'block_migration': storage.block_migration,
            'policy': {
                'max_downtime_ms': max_downtime,
                'downtime_steps': options.get('downtime_steps', lm.downtime_steps),
                'downtime_delay': lm.downtime_delay,
                'completion_timeout': options.get('completion_timeout',
                                                  lm.completion_timeout),
                'progress_timeout': lm.progress_timeout,
                'timeout_action': options.get('timeout_action', lm.timeout_action),
                'post_copy': post_copy,
            },
        }

    def execute(self, ctx):
        m, agents, storage = ctx.migration, ctx.agents, ctx.storage
        src, dst = m['source_host'], m['dest_host']
        instance = ctx.source_instance()
        if storage.has_volumes(instance):
            ctx.on_rollback('disconnect volumes on %s' % dst,
                            agents.disconnect_volumes, dst, instance)
            agents.connect_volumes(dst, instance)
        ctx.on_rollback('remove the incoming VM on %s' % dst,
                        agents.rollback_live_incoming, dst, instance, m)
        # The record moves to running while the destination gets ready: the job needs
        # both, and neither needs the other.
        with futures.ThreadPoolExecutor(1) as pool:
            # What the VM must be on the destination, whoever finishes the job: the
            # source's copy is shut off once it completed.
            running = pool.submit(ctx.start_running,
                                  start_power_state=instance['power_state'])
            try:
                dest_info = agents.prepare_live_incoming(dst, instance, m)
            finally:
                # An abort asked for meanwhile wins over a failed preparation.
                running.result()
        agents.start_live_migration(src, instance, m, dest_info,
                                    self.settings(storage, m['options']))
        self._forward_requests(ctx)
        self.finish(ctx, instance, ctx.follow_job(src))

    @staticmethod
    def _forward_requests(ctx):
        """An abort or force-complete that came while the job was starting found no job
        on the source; the record kept it, so hand it over now."""
        record = ctx.refresh()
        for flag, action in (('abort_requested', 'abort'),
                             ('force_complete_requested', 'force-complete')):
            if record[flag]:
                ctx.agents.job_control(record['source_host'], record['id'], action)

    def finish(self, ctx, instance, outcome):
        m, agents = ctx.migration, ctx.agents
        src, dst = m['source_host'], m['dest_host']
        stats = outcome.get('stats') or {}
        figures = {k: v for k, v in (('downtime_ms', stats.get('downtime')),
                                     ('iteration', stats.get('memory_iteration')),
                                     ('bytes_total', stats.get('data_total')),
                                     ('bytes_processed', stats.get('data_processed')),
                                     ('bytes_remaining', stats.get('data_remaining')),
                                     ('disk_total', stats.get('disk_total')),
                                     ('disk_remaining', stats.get('disk_remaining')),
                                     ('postcopy', stats.get('postcopy')))
                   if v is not None}
        if stats.get('memory_dirty_rate') is not None:
            figures['dirty_rate'] = stats['memory_dirty_rate'] * stats.get(
                'memory_page_size', 4096)
        status = outcome['status']
        if status == hv.JOB_COMPLETED:
            return self._finish_completed(ctx, instance, outcome, figures)
        if status == hv.JOB_POSTCOPY_FAILED:
            ctx.forget_rollback()
            agents.mark_uncertain(dst, instance)
            figures['postcopy'] = True
            return ctx.end_uncertain(
                'post-copy broke (%s): the VM is paused on %s with the pages it received; '
                'the copy left paused on %s is stale' % (outcome.get('error'), dst, src),
                vm_location='paused on %s' % dst, **figures)
        if status == hv.JOB_CANCELLED:
            record = ctx.refresh()
            if record['abort_requested']:
                return ctx.end_unmoved(states.CANCELLED, record['reason'] or 'aborted on request',
                                       **figures)
            # Nobody asked: the monitor's timeout action gave up, which is a failure.
            why = [a.split(': ', 1)[1] for a in outcome.get('actions') or []
                   if a.startswith('abort: ')]
            return ctx.end_unmoved(states.FAILED, 'live migration aborted by the timeout '
                                   'action: %s' % (why[-1] if why else outcome.get('error')),
                                   **figures)
        if status == 'unknown':
            ctx.forget_rollback()
            return base.MigrationType.recover(self, ctx, cause=_job_lost(src, outcome))
        return ctx.end_unmoved(states.FAILED, 'live migration failed: %s'
                               % (outcome.get('error') or status), **figures)

    def _finish_completed(self, ctx, instance, outcome, figures):
        """The job completed: the guest left the source. Finish it on the destination
        and clean the source up; what fails now is said, never rolled back."""
        m, agents = ctx.migration, ctx.agents
        src, dst = m['source_host'], m['dest_host']
        ctx.vm_moved()
        # The guest runs on the destination now: its finish there and the clean-up
        # of the source do not wait for each other.
        with futures.ThreadPoolExecutor(1) as pool:
            cleanup = pool.submit(self._cleanup_source, ctx, instance)
            moved = unfinished = None
            try:
                moved = agents.finish_live_incoming(dst, instance, m)
            except Exception as e:  # noqa: whatever broke, the hypervisor moved it
                LOG.exception('Migration %s: finish on %s failed', m['id'], dst)
                unfinished = e
            left_behind = cleanup.exception()
        notes = []
        # How it was made to finish, when it did not converge on its own.
        forced = [a for a in outcome.get('actions') or []
                  if a.startswith(('pause_guest: ', 'start_postcopy: '))]
        if forced:
            notes.append('completed after %s' % forced[-1].replace(
                'pause_guest', 'pausing the guest').replace(
                'start_postcopy', 'switching to post-copy'))
        if left_behind is not None:
            LOG.warning('Migration %s: clean-up of %s failed: %s', m['id'], src,
                        left_behind)
            notes.append('the clean-up of %s failed (%s): remove what is left of the '
                         'VM there' % (src, left_behind))
        if unfinished is not None:
            # The job completed, so the guest left the source; that it runs on the
            # destination is what its finish would have confirmed. Not "failed" with
            # the VM on the source: that would be a lie.
            return ctx.end_uncertain(
                '; '.join(['the live migration completed but its finish on %s failed '
                           '(%s): check that the VM runs there' % (dst, unfinished)]
                          + notes),
                vm_location='%s (migrated; not confirmed)' % dst, **figures)
        if notes:
            figures['reason'] = '; '.join(notes)
        return ctx.complete(moved, **figures)

    @staticmethod
    def _cleanup_source(ctx, instance):
        m = ctx.migration
        if ctx.storage.has_volumes(instance):
            ctx.agents.disconnect_volumes(m['source_host'], instance)
        ctx.agents.cleanup_live_outgoing(m['source_host'], instance, m)

    def recover(self, ctx, cause=base.CONDUCTOR_STOPPED):
        m = ctx.migration
        src = m['source_host']
        if m['state'] not in (states.RUNNING, states.POSTCOPY):
            return super().recover(ctx, cause)  # no job was started
        try:
            status = ctx.agents.job_status(src, m['id'], timeout=10)
        except Exception:  # noqa: an unreachable agent leaves only observation
            LOG.warning('Migration %s: no job status from %s', m['id'], src)
            status = {'status': 'unknown', 'error': 'the agent of %s did not answer' % src}
        if status['status'] == hv.JOB_RUNNING:
            status = ctx.follow_job(src)
        if status['status'] == 'unknown':
            return super().recover(ctx, '%s, and %s' % (cause, _job_lost(src, status)))
        on_src = ctx.find(src)
        instance = on_src if isinstance(on_src, dict) else db.instance_get(m['instance'])['spec']
        instance = self._as_started(m, instance)
        self._recovery_undo(ctx, instance)
        return self.finish(ctx, instance, status)

    @staticmethod
    def _as_started(migration, instance):
        """The VM with the power state it had when the job started, which is what it must
        be on the destination: the source's copy is shut off once the job completed, and
        the hosts' reports follow it. A record from before revision 0005 has none."""
        if migration.get('start_power_state'):
            return dict(instance, power_state=migration['start_power_state'])
        return instance

    def _recovery_undo(self, ctx, instance):
        m = ctx.migration
        if ctx.storage.has_volumes(instance):
            ctx.on_rollback('disconnect volumes on %s' % m['dest_host'],
                            ctx.agents.disconnect_volumes, m['dest_host'], instance)
        ctx.on_rollback('remove the incoming VM on %s' % m['dest_host'],
                        ctx.agents.rollback_live_incoming, m['dest_host'], instance, m)

    def arrived(self, on_src, on_dst):
        # Pre-copy never stops the source guest; once the job completed it does not run
        # there any more, and the destination's runs.
        return on_dst['power_state'] == 'running' and on_src['power_state'] != 'running'

    def cleanup_source_after_recovery(self, ctx, instance):
        m = ctx.migration
        if ctx.storage.has_volumes(instance):
            ctx.agents.disconnect_volumes(m['source_host'], instance)
        ctx.agents.undefine(m['source_host'], m['instance'], delete_local_files=True)

    def rollback_destination_after_recovery(self, ctx, instance):
        self._recovery_undo(ctx, instance)


def _job_lost(host, outcome):
    """What became of a job whose status is unknown: its agent's part of the story."""
    return outcome.get('error') or ('the agent of %s lost the job (an agent forgets its '
                                    'jobs when it restarts)' % host)
