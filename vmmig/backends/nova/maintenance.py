"""vmmig's maintenance of a host, told to Nova: its nova-compute service disabled.

vmmig keeps a host in maintenance out of its own placement, but Nova's scheduler
would still put new servers (boots, and moves vmmig did not ask for) on it. While
vmmig holds a host in maintenance its service is disabled in Nova, as Watcher's
maintenance strategy and Masakari's host recovery do; lifted, it is enabled again.

The disabled reason says whose it is: a service an operator disabled in Nova for a
reason of their own is never enabled by vmmig. The discovery calls ``mirror`` every
time, so Nova ends up as the records say even when it could not be told at once.
"""

import logging

from vmmig import exception

LOG = logging.getLogger(__name__)

#: how the disabled reason of a service vmmig disabled begins
PREFIX = 'vmmig maintenance'
# Nova's services.disabled_reason is a String(255).
_REASON_MAX = 255


def reason_for(maintenance_reason):
    """The disabled reason given to Nova for vmmig's ``maintenance_reason``."""
    text = '%s: %s' % (PREFIX, maintenance_reason) if maintenance_reason else PREFIX
    return text[:_REASON_MAX]


def is_ours(service):
    return (service.get('disabled_reason') or '').startswith(PREFIX)


def mirror(nova, services, held):
    """Disable in Nova the services of the hosts in ``held`` (name: maintenance
    reason) and enable those vmmig disabled on hosts no longer held.

    ``services``: Nova's compute services as listed; each one changed is updated in
    place, so the host facts of this discovery already show it. A change Nova
    refuses is logged and tried again at the next discovery; an unreachable Nova
    raises, as the discovery's other calls do.
    Returns the hosts changed, as (host, 'disabled' or 'enabled').
    """
    changed = []
    for service in services:
        host = service['host']
        try:
            if host in held and service.get('status') == 'enabled':
                reason = reason_for(held[host])
                nova.disable_service(service['id'], host, reason)
                service.update(status='disabled', disabled_reason=reason)
                changed.append((host, 'disabled'))
            elif host not in held and service.get('status') == 'disabled' \
                    and is_ours(service):
                nova.enable_service(service['id'], host)
                service.update(status='enabled', disabled_reason=None)
                changed.append((host, 'enabled'))
            else:
                continue
        except exception.NovaRefused as e:
            # One service refused; an unreachable Nova raises, ending the discovery.
            LOG.warning('Nova backend: could not tell Nova that %s is %s vmmig\'s '
                        'maintenance (tried again at the next discovery): %s', host,
                        'in' if host in held else 'out of', e)
            continue
        LOG.info('Nova backend: nova-compute on %s %s in Nova (%s)', host, changed[-1][1],
                 'vmmig maintenance' if host in held else 'maintenance lifted')
    return changed
