"""Fencing as Nova knows it: a host whose nova-compute service is forced down.

Nova evacuates only from a host it believes down, and ``forced_down`` is how an
operator or an outside fencing (a BMC power-off, a watchdog) tells it the host
is fenced. This driver trusts that word: it powers nothing off, and confirms
only a host that something outside vmmig fenced and forced down. With it the HA
monitor rebuilds the VMs of such a host by itself, and leaves a host that is
only down (not forced down) as it is, saying why.
"""

from vmmig import conf
from vmmig import exception
from vmmig.fencing import base

CONF = conf.CONF


class NovaForcedDown(base.Fencing):
    fences = True

    def validate(self):
        if CONF.drivers.backend != 'nova':
            raise exception.InvalidOption(
                option='[drivers] fencing', value='nova',
                reason='it reads the compute services of the nova backend; set '
                       '[drivers] backend = nova')

    def confirm(self, host):
        service = (host.get('facts') or {}).get('nova') or {}
        if host['state'] != 'down':
            return False, 'host %s is up' % host['name']
        if not service.get('forced_down'):
            return False, ('nova-compute on %s is down but not forced down in Nova: fence '
                           'the host, then force it down (openstack compute service set '
                           '--down %s nova-compute)' % (host['name'], host['name']))
        return True, 'nova-compute on %s is forced down in Nova' % host['name']
