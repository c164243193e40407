"""``drain``: empty a host for maintenance, in the shortest time the limits allow.

The longest migrations go first: with a few running side by side, a long one
started last would keep the host busy alone at the end (longest processing time
first). Placing the largest VMs first also packs the other hosts better.
"""

from vmmig.strategies import base


class Drain(base.Strategy):
    name = 'drain'

    def order(self, vms):
        return sorted(vms, key=lambda v: (-v['estimate_s'], v['instance']))
