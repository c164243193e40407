"""Cold migration: the VM is shut off or suspended, and comes back so on the destination.

Configuration and local files (disks, the saved memory of a suspended VM)
go from agent to agent, checksummed; the source definition is removed only
after the destination holds a verified copy.
"""

import hashlib

from vmmig import conf
from vmmig.db import api as db
from vmmig.migration import base

CONF = conf.CONF


class ColdMigration(base.MigrationType):
    name = 'cold'
    options = {
        'shutdown': base.Option(bool, 'shut a running VM down first (graceful, then forced)'),
        'shutdown_timeout': base.Option(int, 'seconds a graceful shutdown may take'),
    }
    reassigns_pci_devices = True

    def instance_reasons(self, instance, options):
        if instance['power_state'] in ('running', 'paused') and not options.get('shutdown'):
            return ['%s is %s; a cold migration moves a shut-off or suspended VM. Ask for '
                    'a shutdown first (--shutdown) or migrate it live'
                    % (instance['name'], instance['power_state'])]
        return []

    def execute(self, ctx):
        m, agents, storage = ctx.migration, ctx.agents, ctx.storage
        src, dst = m['source_host'], m['dest_host']
        instance = ctx.source_instance()
        if instance['power_state'] in ('running', 'paused'):
            ctx.on_rollback('start %s again on %s' % (instance['name'], src),
                            agents.power_on, src, instance['name'])
            timeout = m['options'].get('shutdown_timeout',
                                       CONF.cold_migration.shutdown_timeout)
            # Written before the shutdown: a conductor that takes over after a crash
            # must know the VM ran, to start it again if the migration is rolled back.
            db.migration_update(ctx.id, vm_location=shut_down_on(src))
            how = agents.power_off(src, instance['name'], timeout)
            start_after = True
            # The record says how the guest went down: a forced stop may lose data.
            note = 'shut down on %s (%s, %s s allowed), started on %s' % (
                src, how, timeout, dst)
        else:
            start_after = False
            note = None
        ctx.start_running()
        if storage.has_volumes(instance):
            ctx.on_rollback('disconnect volumes on %s' % dst,
                            agents.disconnect_volumes, dst, instance)
            agents.connect_volumes(dst, instance)
        # Each file may be fetched once, from the destination's address only.
        peer = db.host_get(dst)['facts'].get('transfer_address')
        offer = agents.offer_files(src, instance['name'], m['id'], peer=peer)
        ctx.on_rollback('withdraw the file offer on %s' % src,
                        agents.withdraw_offer, src, m['id'])
        ctx.on_rollback('remove the copy on %s' % dst,
                        agents.undefine, dst, instance['name'], True)
        offer = self._record_offer(ctx, offer)
        # An abort asked before the offer existed found nothing to withdraw: seen here.
        # One asked later withdraws it (stop_for_abort), which cuts the copy short.
        ctx.check_abort()
        try:
            received = agents.receive_instance(dst, offer['instance'], offer)
        except Exception:
            ctx.check_abort()
            raise
        agents.withdraw_offer(src, m['id'])
        ctx.check_abort()
        if start_after:
            agents.power_on(dst, instance['name'])
        # The destination holds a verified copy: only now may the source forget the VM.
        ctx.vm_moved()
        agents.undefine(src, instance['name'], True)
        if storage.has_volumes(instance):
            agents.disconnect_volumes(src, instance)
        moved = agents.get_instance(dst, instance['name'])
        total = sum(f['size'] for f in offer['files'])
        ctx.complete(moved, reason=note, checksum=combined_checksum(received['checksums']),
                     bytes_total=total, bytes_processed=total, bytes_remaining=0)

    @staticmethod
    def _record_offer(ctx, offer):
        """Record the size and SHA-256 of each offered file as the source computed them,
        and give the receiver those from the record: it checks its copy against what
        the conductor holds, not against what the sending peer says."""
        db.migration_update(ctx.id, offered_files=[
            {key: f.get(key) for key in ('id', 'kind', 'size', 'sha256')}
            for f in offer['files']])
        recorded = {f['id']: f for f in ctx.refresh()['offered_files']}
        return dict(offer, files=[dict(f, size=recorded[f['id']]['size'],
                                       sha256=recorded[f['id']]['sha256'])
                                  for f in offer['files']])

    def stop_for_abort(self, agents, migration):
        # The receiving agent's copy ends as soon as the source stops sending.
        agents.withdraw_offer(migration['source_host'], migration['id'])

    def rollback_destination_after_recovery(self, ctx, instance):
        m = ctx.migration
        src, dst = m['source_host'], m['dest_host']
        # Undone last to first: the copy goes, then the volumes, then the VM starts.
        # Whether the shutdown finished or is still under way on the source.
        if m.get('vm_location') == shut_down_on(src):
            ctx.on_rollback('start %s again on %s' % (m['instance'], src),
                            ctx.agents.power_on, src, m['instance'])
        if ctx.storage.has_volumes(instance):
            ctx.on_rollback('disconnect volumes on %s' % dst,
                            ctx.agents.disconnect_volumes, dst, instance)
        on_dst = ctx.find(dst)
        if isinstance(on_dst, dict):
            # Both hosts hold it: the copy was never verified as complete. Keep the source.
            ctx.on_rollback('remove the unverified copy on %s' % dst,
                            ctx.agents.undefine, dst, m['instance'], True)

    def cleanup_source_after_recovery(self, ctx, instance):
        if ctx.storage.has_volumes(instance):
            ctx.agents.disconnect_volumes(ctx.migration['source_host'], instance)


def shut_down_on(host):
    """vm_location of a migration that shut its VM down and has not moved it yet."""
    return '%s (shut down by this migration)' % host


def combined_checksum(checksums):
    """One SHA-256 over the per-file ones, in file order, for the record."""
    if not checksums:
        return None
    digest = hashlib.sha256()
    for file_id in sorted(checksums):
        digest.update(('%s=%s\n' % (file_id, checksums[file_id])).encode())
    return digest.hexdigest()
