from vmmig.fencing import base


class NoopFencing(base.Fencing):
    """No fencing is possible: evacuation is always refused."""

    def confirm(self, host):
        return False, 'no fencing driver is configured ([drivers] fencing = noop)'
