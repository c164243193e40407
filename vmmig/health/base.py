"""The contract of a host health monitor (plugins of ``vmmig.health``).

The agent asks its monitor at every heartbeat and tells the conductor when the
answer changes; ``failing`` makes the conductor act ([ha] prefailure_action).
"""

OK = 'ok'
DEGRADED = 'degraded'
FAILING = 'failing'
STATUSES = (OK, DEGRADED, FAILING)


class HealthMonitor(object):

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    def status(self):
        """(one of STATUSES, the reason in words or None)."""
        raise NotImplementedError
