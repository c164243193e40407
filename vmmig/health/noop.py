"""``noop``: a host that never says anything about its health (always ok)."""

from vmmig.health import base


class NoopHealth(base.HealthMonitor):

    def status(self):
        return base.OK, None
