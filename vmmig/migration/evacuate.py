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
        ctx.complete(rebuilt)
