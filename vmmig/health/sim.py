"""``sim``: the health a simulated host is given.

From ``<state_path>/sim/health/<host>.json`` (``{"status": "failing", "reason":
"..."}``), which a test or an operator playing with the simulator writes at any
time; else from the host's ``health`` in the cluster file; else ok.
"""

import json
import os

from vmmig.health import base
from vmmig.hypervisor.sim import cluster


def path(state_path, host):
    return os.path.join(os.path.expanduser(state_path), 'sim', 'health', host + '.json')


class SimHealth(base.HealthMonitor):

    def status(self):
        try:
            with open(path(self.conf.state_path, self.host)) as f:
                health = json.load(f)
        except FileNotFoundError:
            spec = cluster.load(self.conf.sim.cluster_file)['hosts'].get(self.host, {})
            health = spec.get('health') or {}
        if isinstance(health, str):
            health = {'status': health}
        status = health.get('status', base.OK)
        if status not in base.STATUSES:
            return base.DEGRADED, 'unknown health %r reported by the simulator' % status
        return status, health.get('reason')
