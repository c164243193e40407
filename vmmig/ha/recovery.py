"""The recovery of a fenced host: its HA-enabled VMs evacuated by priority.

``order_evacuations`` is the whole policy, a pure function of the hosts and the
VMs; ``recover_host`` records what it decides through the conductor's path for
evacuations, one VM after the other so the room each takes counts for the next.
(When recoveries become action plans, only ``recover_host`` changes.)
"""

import logging

from vmmig import conf
from vmmig.db import api as db
from vmmig import exception
from vmmig.scheduler import filters

LOG = logging.getLogger(__name__)
CONF = conf.CONF

DISABLED = 'HA is disabled for this VM'


def ha_settings(spec):
    """(enabled, priority) of a VM: its ``ha`` metadata, enabled with priority 0 unless
    it says otherwise. Raises Invalid naming what is wrong."""
    ha = (spec or {}).get('ha') or {}
    if not isinstance(ha, dict):
        raise exception.Invalid(reason='the "ha" metadata of %s must be an object, not %r'
                                % (spec.get('name'), ha))
    enabled = ha.get('enabled', True)
    if isinstance(enabled, str):
        enabled = enabled.strip().lower() not in ('false', 'no', '0', 'off')
    try:
        priority = int(ha.get('priority', 0))
    except (TypeError, ValueError):
        raise exception.Invalid(reason='the HA priority of %s must be an integer, not %r'
                                % (spec.get('name'), ha.get('priority')))
    return bool(enabled), priority


def _free(host, reserved_mb, reserved_vcpus, ratio):
    facts = host.get('facts') or {}
    return {'vcpus': facts.get('vcpus', 0) * ratio - reserved_vcpus
            - facts.get('vcpus_used', 0),
            'memory_mb': facts.get('memory_mb', 0) - reserved_mb
            - facts.get('memory_mb_used', 0)}


def order_evacuations(instances, hosts, method='auto', reserved_hosts=(),
                      reserved_mb=0, reserved_vcpus=0, cpu_ratio=1.0):
    """[(instance name, priority, destination or None, reason or None)], highest
    priority first (then by name).

    A reason means the VM stays where it is. ``auto``: the destination is left to the
    scheduler (None); ``reserved_host``: the first reserved host that is up, out of
    maintenance, and has room left for the VM after those placed before it.
    """
    plan = []
    taken = []
    for spec in instances:
        try:
            enabled, priority = ha_settings(spec)
        except exception.Invalid as e:
            plan.append((spec['name'], 0, None, e.kwargs['reason']))
            continue
        if not enabled:
            plan.append((spec['name'], priority, None, DISABLED))
            continue
        taken.append((spec, priority))
    taken.sort(key=lambda sp: (-sp[1], sp[0]['name']))
    if method != 'reserved_host':
        return [(spec['name'], priority, None, None) for spec, priority in taken] + plan
    by_name = {h['name']: h for h in hosts}
    spares = [by_name[name] for name in reserved_hosts if name in by_name
              and by_name[name]['state'] == 'up' and not by_name[name]['maintenance']]
    free = {h['name']: _free(h, reserved_mb, reserved_vcpus, cpu_ratio) for h in spares}
    ordered = []
    for spec, priority in taken:
        need = filters.footprint(spec)
        dest = next((name for name in free
                     if free[name]['vcpus'] >= need['vcpus']
                     and free[name]['memory_mb'] >= need['memory_mb']), None)
        if dest is None:
            ordered.append((spec['name'], priority, None,
                            'no reserved host (%s) is up with room for it'
                            % (', '.join(reserved_hosts) or 'none configured')))
            continue
        free[dest]['vcpus'] -= need['vcpus']
        free[dest]['memory_mb'] -= need['memory_mb']
        ordered.append((spec['name'], priority, dest, None))
    return ordered + plan


def recover_host(conductor, host, method, reserved_hosts, since, done=()):
    """Record the evacuations of the VMs of fenced ``host``; the items of the recovery.

    ``conductor``: the ConductorManager (its path for recording a migration);
    ``since``: when the recovery began (an evacuation of a VM recorded since then, by
    a monitor that stopped before it could say so, is this recovery's);
    ``done``: the items recorded already, kept as they are.
    """
    items = list(done)
    seen = {item['instance'] for item in items}
    instances = [i['spec'] for i in db.instance_list(host=host) if i['name'] not in seen]
    hosts = db.host_list() if method == 'reserved_host' else []
    plan = order_evacuations(instances, hosts, method, reserved_hosts,
                             CONF.scheduler.reserved_host_memory_mb,
                             CONF.scheduler.reserved_host_vcpus,
                             CONF.scheduler.cpu_allocation_ratio)
    for name, priority, dest, reason in plan:
        item = {'instance': name, 'priority': priority, 'destination': dest,
                'migration': None, 'reason': reason}
        items.append(item)
        if reason:
            LOG.warning('Recovery of %s: %s stays: %s', host, name, reason)
            continue
        earlier = _evacuation_since(name, host, since)
        if earlier:
            item.update(migration=earlier['id'], destination=earlier['dest_host'])
            continue
        try:
            migration = conductor.record_migration(name, 'evacuate', dest,
                                                   requested_by='ha-monitor')
        except exception.VmmigException as e:
            # A monitor that was active a moment ago may have recorded it meanwhile.
            earlier = _evacuation_since(name, host, since)
            if earlier:
                item.update(migration=earlier['id'], destination=earlier['dest_host'])
                continue
            reasons = getattr(e, 'reasons', None)
            item['reason'] = '; '.join(reasons) if reasons else e.message
            LOG.warning('Recovery of %s: %s stays: %s', host, name, item['reason'])
            continue
        item.update(migration=migration['id'], destination=migration['dest_host'])
        LOG.info('Recovery of %s: %s (priority %s) evacuated to %s by migration %s',
                 host, name, priority, migration['dest_host'], migration['id'])
    return items


def _evacuation_since(name, host, since):
    """The evacuation of ``name`` from ``host`` recorded since ``since``, or None."""
    found = [m for m in db.migration_list(instance=name)
             if m['migration_type'] == 'evacuate' and m['source_host'] == host
             and m['created_at'] >= since]
    return found[-1] if found else None
