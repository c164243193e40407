"""Evacuation: the source host is dead; its VM is rebuilt on a healthy host.

Only from shared storage or volumes, and only once the fencing driver has
confirmed the dead host cannot run the VM any more: a VM never runs twice.
"""

from vmmig.db import api as db
from vmmig import exception
from vmmig.migration import base
from vmmig import plugins


class Evacuation(base.MigrationType):
    name = 'evacuate'
    source_must_be_up = False

    def instance_reasons(self, instance, options):
        return []

    def execute(self, ctx):
        m, agents = ctx.migration, ctx.agents
        dst = m['dest_host']
        host = db.host_get(m['source_host'])
        fenced, how = plugins.fencing().confirm(host)
        if not fenced:
            raise exception.PrecheckFailed(instance=m['instance'], reasons=[
                'source host %s is not fenced: %s' % (host['name'], how)])
        instance = db.instance_get(m['instance'])['spec']
        ctx.start_running(reason='fenced: %s' % how)
        if ctx.storage.has_volumes(instance):
            ctx.on_rollback('disconnect volumes on %s' % dst,
                            agents.disconnect_volumes, dst, instance)
            agents.connect_volumes(dst, instance)
        ctx.on_rollback('remove the rebuilt VM on %s' % dst, agents.undefine, dst,
                        instance['name'], False)
        rebuilt = agents.rebuild(dst, instance)
        ctx.vm_moved()
        lost = what_was_lost(instance, rebuilt, m['source_host'], dst)
        ctx.complete(rebuilt, reason='fenced: %s%s' % (how, '; ' + lost if lost else ''))


def what_was_lost(instance, rebuilt, source, dest):
    """Words for the record when the VM could not keep its power state, or None.

    A running VM restarts from its disks (what an evacuation is); one that was not
    running is never started: a paused VM's memory was in the dead host's RAM, and a
    suspended one's saved memory is lost unless the destination could restore it.
    """
    before, after = instance['power_state'], rebuilt['power_state']
    if before == after:
        return None
    what = {'paused': 'its memory', 'suspended': 'its saved memory'}.get(before, 'its state')
    return '%s was %s on %s: %s was lost; it is %s on %s' % (
        instance['name'], before, source, what, _said(after), dest)


def _said(power_state):
    return 'shut off' if power_state == 'shutoff' else power_state
