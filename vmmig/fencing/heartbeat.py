import time

from vmmig import conf
from vmmig.fencing import base

CONF = conf.CONF


class HeartbeatFencing(base.Fencing):
    """Trusts a host silent for longer than [conductor] fencing_grace.

    Suits hosts that stop their VMs when they lose the management network
    (a host watchdog); with nothing like that, use a power fencing driver.
    """

    def confirm(self, host):
        silent = time.time() - (host.get('last_heartbeat') or 0)
        if host['state'] != 'down':
            return False, 'host %s is up' % host['name']
        if silent < CONF.conductor.fencing_grace:
            return False, ('host %s has been silent for %.0f s only; fencing needs %.0f s'
                           % (host['name'], silent, CONF.conductor.fencing_grace))
        return True, 'silent for %.0f s' % silent
