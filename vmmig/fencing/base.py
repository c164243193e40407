"""Fencing: proof that a down host cannot run its VMs any more, before evacuation.

``confirm(host)`` returns ``(True, how)`` or ``(False, why not)``; evacuating a
VM whose old host might still run it would put it on two hosts. A driver whose
confirmation is proof that the host is fenced says so with ``fences``: it powers
the host off itself (``powers_off``), or reads the word of a fencer outside vmmig
(Nova's forced-down compute service). Only then does the HA monitor rebuild a dead
host's VMs by itself; silence alone is no proof.
"""

from vmmig import exception


class Fencing(object):
    #: confirm() powers the host off (and waits until it is off), rather than trusting
    #: what is seen from outside.
    powers_off = False
    #: confirm() says True only on proof that the host is fenced: a power off of its
    #: own, or an outside fencer's word; the HA monitor rebuilds VMs only then.
    fences = False

    def validate(self):
        """Raise InvalidOption when the driver's settings cannot work (at start-up)."""

    def confirm(self, host):
        raise NotImplementedError

    def power_on(self, host):
        """Power ``host`` on again; ``(True, how)`` or ``(False, why not)``."""
        raise exception.Invalid(reason='fencing driver %s cannot power hosts on'
                                % type(self).__name__)
