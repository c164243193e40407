import os

from vmmig import conf
from vmmig.fencing import base

CONF = conf.CONF


class SimFencing(base.Fencing):
    """Powers a simulated host off: its agent, if it comes back, starts no VM it had."""

    powers_off = True
    fences = True

    def confirm(self, host):
        if host['state'] != 'down':
            return False, 'host %s is up' % host['name']
        path = os.path.join(os.path.expanduser(CONF.state_path), 'sim', 'hosts',
                            host['name'] + '.fenced')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('fenced\n')
        return True, 'simulated power-off of %s' % host['name']
