"""``evacuate``: the plan of the HA monitor for a fenced host, its VMs rebuilt elsewhere.

The VMs go by their HA priority, highest first (then by name), each as an
``evacuate`` migration that keeps its power state. ``order_evacuations`` is the
whole placement policy, a pure function of the hosts and the VMs: with
``recovery_method = auto`` the scheduler chooses each destination when the
evacuation is recorded (counting the room of those recorded before it); with
``reserved_host`` the first reserved host with room left. A VM with HA disabled,
on storage an evacuation cannot rebuild from (a local disk), or with no room
anywhere stays, and its action says why.
"""

from vmmig.conductor import prechecks
from vmmig import exception
from vmmig.plans import states
from vmmig import plugins
from vmmig.scheduler import filters
from vmmig.strategies import base

DISABLED = 'HA is disabled for this VM'
METHODS = ('auto', 'reserved_host')


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


def validate_options(options):
    """{'recovery_method', 'reserved_hosts'}: how the monitor was configured."""
    options = dict(options or {})
    method = options.setdefault('recovery_method', 'auto')
    if method not in METHODS:
        raise exception.InvalidOption(option='recovery_method', value=method,
                                      reason='one of %s' % ', '.join(METHODS))
    reserved = options.setdefault('reserved_hosts', [])
    if not isinstance(reserved, list) or not all(isinstance(h, str) for h in reserved):
        raise exception.InvalidOption(option='reserved_hosts', value=reserved,
                                      reason='must be a list of host names')
    unknown = set(options) - {'recovery_method', 'reserved_hosts'}
    if unknown:
        raise exception.InvalidOption(option=sorted(unknown)[0],
                                      value=options[sorted(unknown)[0]],
                                      reason='not an option of an evacuation plan')
    return options


class Evacuate(base.Strategy):
    name = 'evacuate'

    def build(self, model, host, options=None, reserved=(0, 0, 1.0)):
        """(actions, estimate) for fenced ``host``; ``reserved``: the scheduler's
        (reserved_host_memory_mb, reserved_host_vcpus, cpu_allocation_ratio)."""
        options = validate_options(options)
        if host not in model.hosts:
            raise exception.HostNotFound(host=host)
        rows = {r['name']: r for r in model.instances if r['host'] == host}
        specs = [dict(r['spec'] or {}, name=name) for name, r in rows.items()]
        decided = order_evacuations(specs, list(model.hosts.values()),
                                    options['recovery_method'], options['reserved_hosts'],
                                    *reserved)
        mtype = plugins.migration_type('evacuate')()
        actions = []
        for name, priority, dest, reason in decided:
            row = rows[name]
            spec = dict(row['spec'] or {}, name=name, host=host)
            if reason is None:
                # Checked now, not only when recorded: the plan says at once which VMs
                # an evacuation cannot rebuild.
                _storage, reasons = prechecks._storage(spec, mtype)
                reasons += mtype.instance_reasons(spec, {})
                reason = '; '.join(reasons) or None
            action = {'instance': name, 'power_state': row['power_state']
                      or spec.get('power_state'), 'dest_host': dest, 'options': {},
                      'estimate_s': 0.0, 'priority': priority}
            if reason is None:
                action.update(migration_type=mtype.name, state=states.PENDING,
                              reason='HA priority %d' % priority)
            else:
                action.update(migration_type=None, dest_host=None, state=states.STAYS,
                              reason=reason)
            actions.append(action)
        moving = [a for a in actions if a['state'] == states.PENDING]
        # A rebuild copies nothing over the network: its duration is not modelled.
        return [base._public(a) for a in moving + [a for a in actions if a not in moving]], 0.0
