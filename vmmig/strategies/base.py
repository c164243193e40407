"""The contract of a strategy (plugins of ``vmmig.strategies``): the action plan that
empties a host, built from the cluster model (vmmig/plans/model.py).

A strategy decides the order in which the VMs go and may bring options of its
own; what moves how is the same for all: a running or paused VM moves live, a
shut-off or suspended one cold and keeps its power state; a running VM with a
passthrough device moves cold with a shutdown only when asked
(``shutdown_passthrough``); a VM no host can take stays, with the reason.
"""

from vmmig.conductor import prechecks
from vmmig import exception
from vmmig.plans import cost
from vmmig.plans import model as plan_model
from vmmig.plans import states
from vmmig import plugins

LIVE_STATES = ('running', 'paused')

#: option -> (type, help): what an operator may ask of a drain
OPTIONS = {
    'shutdown_passthrough': (bool, 'move a running VM with a passthrough device cold, '
                                   'shut down first'),
    'cold_fallback': (bool, 'move a running VM cold, shut down first, when its live '
                            'migration fails'),
}


def validate_options(options):
    clean = {}
    for key, value in (options or {}).items():
        if key not in OPTIONS:
            raise exception.InvalidOption(option=key, value=value, reason=(
                'not an option of a plan; options: %s' % ', '.join(sorted(OPTIONS))))
        if not isinstance(value, bool):
            raise exception.InvalidOption(option=key, value=value,
                                          reason='must be true or false')
        clean[key] = value
    return clean


class Strategy(object):
    name = None

    def order(self, vms):
        """The VMs (dicts with 'estimate_s') in the order they should go."""
        raise NotImplementedError

    def build(self, model, host, options=None):
        """(actions, estimate in seconds) that empty ``host`` of ``model``."""
        options = validate_options(options)
        if host not in model.hosts:
            raise exception.HostNotFound(host=host)
        source = model.hosts[host]
        # The host leaves placement with the plan: none of its VMs may land on it.
        placer = plan_model.Placer(model, excluded=(host,))
        source_facts = dict(source['facts'], host=host)
        vms = []
        for row in model.instances:
            if row['host'] != host:
                continue
            vm = self._what_happens(row, source_facts, options)
            # A first guess, over the source's own link, to decide the order.
            vm['estimate_s'] = (cost.seconds(vm['migration_type'], vm['spec'],
                                             cost.link(source_facts, None), vm['options'])
                                if vm['migration_type'] else 0.0)
            vms.append(vm)
        # Split before placing: a VM no host can take loses its type in _place, and
        # must not then be counted a second time among those that stay anyway.
        staying = [v for v in vms if not v['migration_type']]
        actions = []
        for vm in self.order([v for v in vms if v['migration_type']]):
            self._place(placer, vm, source_facts, model)
            actions.append(vm)
        actions += staying
        for action in actions:
            if action['migration_type'] is None:
                action.update(state=states.STAYS, migration_type=None)
        moving = [a for a in actions if a['state'] == states.PENDING]
        actions = moving + [a for a in actions if a['state'] != states.PENDING]
        _times, estimate = cost.schedule(
            [(i, host, a['dest_host'], a['estimate_s']) for i, a in enumerate(moving)])
        return [_public(a) for a in actions], estimate

    def _what_happens(self, row, source_facts, options):
        spec = dict(row['spec'] or {}, name=row['name'], host=row['host'])
        spec['power_state'] = row['power_state'] or spec.get('power_state')
        vm = {'instance': row['name'], 'power_state': spec['power_state'], 'spec': spec,
              'dest_host': None, 'options': {}, 'state': states.PENDING, 'reason': None}
        if spec['power_state'] in LIVE_STATES:
            if spec.get('pci_devices'):
                if not options.get('shutdown_passthrough'):
                    vm.update(migration_type=None, reason=(
                        'it runs with passthrough device(s) %s, which cannot move live; '
                        'ask for it to be shut down and moved cold '
                        '(--shutdown-passthrough)' % ', '.join(map(str, spec['pci_devices']))))
                    return vm
                vm.update(migration_type='cold', options={'shutdown': True})
            else:
                vm['migration_type'] = 'live'
        else:
            vm['migration_type'] = 'cold'
        try:
            mtype = plugins.migration_type(vm['migration_type'])()
        except exception.DriverNotFound as e:
            vm.update(migration_type=None, reason=e.message)
            return vm
        storage, reasons = prechecks._storage(spec, mtype)
        reasons += mtype.instance_reasons(spec, vm['options'])
        if reasons:
            vm.update(migration_type=None, reason='; '.join(reasons))
        else:
            vm['request'] = {'instance': spec, 'migration_type': mtype.name,
                             'source': source_facts, 'storage': storage}
        return vm

    @staticmethod
    def _place(placer, vm, source_facts, model):
        request = dict(vm.pop('request'), inbound=model.inbound)
        dest, refusals = placer.place(request, vm['spec'])
        if dest is None:
            shown = '; '.join(refusals[:3]) or 'no other host is known'
            more = len(refusals) - 3
            vm.update(migration_type=None, reason='no host can take it: %s%s' % (
                shown, ' (and %d more hosts refused)' % more if more > 0 else ''))
            return
        vm['dest_host'] = dest
        vm['estimate_s'] = cost.seconds(vm['migration_type'], vm['spec'],
                                        cost.link(source_facts, model.hosts[dest]['facts']),
                                        vm['options'])


def _public(vm):
    """The columns of a plan_actions row."""
    return {k: vm[k] for k in ('instance', 'power_state', 'migration_type', 'dest_host',
                               'options', 'state', 'reason', 'estimate_s')}


def load(name):
    return plugins.load_class(plugins.STRATEGIES, name, 'strategy')()
