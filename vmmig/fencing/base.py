"""Fencing: proof that a down host cannot run its VMs any more, before evacuation.

``confirm(host)`` returns ``(True, how)`` or ``(False, why not)``; evacuating a
VM whose old host might still run it would put it on two hosts.
"""


class Fencing(object):
    def confirm(self, host):
        raise NotImplementedError
