"""Fencing: proof that a down host cannot run its VMs any more, before evacuation.

``confirm(host)`` returns ``(True, how)`` or ``(False, why not)``; evacuating a
VM whose old host might still run it would put it on two hosts. A driver that
powers hosts off says so with ``powers_off``: only then does the HA monitor
rebuild a dead host's VMs by itself.
"""

from vmmig import exception


class Fencing(object):
    #: confirm() powers the host off (and waits until it is off), rather than trusting
    #: what is seen from outside.
    powers_off = False

    def validate(self):
        """Raise InvalidOption when the driver's settings cannot work (at start-up)."""

    def confirm(self, host):
        raise NotImplementedError

    def power_on(self, host):
        """Power ``host`` on again; ``(True, how)`` or ``(False, why not)``."""
        raise exception.Invalid(reason='fencing driver %s cannot power hosts on'
                                % type(self).__name__)
