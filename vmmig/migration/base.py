"""The contract of a migration type (cold, live, evacuate).

A migration type declares which storage modes it can move, checks the
request before anything is recorded (every reason, not only the first), and
executes the host steps through the agents. ``execute`` starts with the
record in ``preparing`` and must leave it in a terminal state through the
context (complete, end_unmoved, end_uncertain); anything it raises is turned
into a rollback and ``failed`` by the conductor. ``recover`` finishes a
migration whose conductor died, by looking at where the VM really is.
"""

import collections

from vmmig.db import states
from vmmig import exception
from vmmig import limits


class Option(collections.namedtuple('Option', 'kind help minimum maximum')):
    """An option a migration type accepts; a whole number must lie in [minimum, maximum].

    The bounds are the conductor's: the CLI checks the same ones (vmmig.limits).
    """

    def __new__(cls, kind, help, minimum=1, maximum=limits.COUNT_MAX):
        return super().__new__(cls, kind, help, minimum, maximum)


#: what happened when a conductor adopts a migration (its own, after a restart)
CONDUCTOR_STOPPED = 'the conductor stopped during the migration'


class MigrationType(object):
    name = None
    #: the source host must be up (evacuation wants it down)
    source_must_be_up = True
    #: option name -> Option(type, help[, minimum, maximum]); anything else is refused
    options = {}
    #: the VM is defined afresh on the destination, which gives each of its PCI
    #: passthrough devices a free one of the same kind there (a running guest cannot
    #: change its device)
    reassigns_pci_devices = False
    #: a running migration of this type can be aborted and forced to complete as a
    #: job on its source (abort, force-complete)
    supports_job_control = False

    def validate_options(self, options):
        """Return the options typed; raise InvalidOption naming a malformed one."""
        clean = {}
        for key, value in (options or {}).items():
            if key not in self.options:
                raise exception.InvalidOption(
                    option=key, value=value,
                    reason='not an option of %s migration; options: %s'
                           % (self.name, ', '.join(sorted(self.options)) or 'none'))
            option = self.options[key]
            if option.kind is bool and not isinstance(value, bool):
                raise exception.InvalidOption(option=key, value=value,
                                              reason='must be true or false')
            if option.kind is int and (isinstance(value, bool) or not isinstance(value, int)
                                       or not option.minimum <= value <= option.maximum):
                raise exception.InvalidOption(
                    option=key, value=value, reason='must be a whole number from %d to %d'
                                                    % (option.minimum, option.maximum))
            clean[key] = value
        return clean

    def instance_reasons(self, instance, options):
        """Reasons from the VM itself (its power state, say) that refuse this type."""
        return []

    def required_capabilities(self, storage, options):
        """{hypervisor capability (see HypervisorDriver.capabilities): what it is needed
        for} that the drivers of both hosts must have for this request."""
        return {}

    def execute(self, ctx):
        raise NotImplementedError

    def stop_for_abort(self, agents, migration):
        """An operator asked to abort ``migration`` (a record, running or preparing):
        cut the host work under way so that the type sees the request soon. By
        default nothing: the type checks the record between its steps."""

    def recover(self, ctx, cause=CONDUCTOR_STOPPED):
        """Default reconciliation: trust what the hosts show.

        ``cause``: what happened, the start of the record's reason: the conductor
        stopped (an adopting conductor calls this), or the source agent stopped
        answering or lost the job while the conductor ran on.
        """
        m = ctx.migration
        src, dst = m['source_host'], m['dest_host']
        on_dst = ctx.find(dst) if dst else None
        on_src = ctx.find(src)
        if isinstance(on_dst, dict) and (on_src is None or (
                isinstance(on_src, dict) and self.arrived(on_src, on_dst))):
            if self.name != 'evacuate':
                self.cleanup_source_after_recovery(ctx, on_dst)
            return ctx.complete(on_dst, reason='%s; the VM was found on %s, completed by '
                                               'recovery' % (cause, dst))
        if isinstance(on_src, dict):
            self.rollback_destination_after_recovery(ctx, on_src)
            if ctx.refresh()['state'] not in states.TERMINAL:
                ctx.end_unmoved(states.FAILED, '%s; rolled back, the VM stays on %s'
                                % (cause, src))
            return None
        return ctx.end_uncertain(
            '%s, and the VM could not be found (source: %s, destination: %s)'
            % (cause, on_src, on_dst),
            vm_location='unknown: not seen on %s or %s' % (src, dst))

    def arrived(self, on_src, on_dst):
        """Both hosts define the VM: True when the destination's copy is the live one."""
        return False

    def cleanup_source_after_recovery(self, ctx, instance):
        """The VM made it to the destination: remove leftovers on the source."""

    def rollback_destination_after_recovery(self, ctx, instance):
        """The VM is still on the source: remove what the destination holds."""
