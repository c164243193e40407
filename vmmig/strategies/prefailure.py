"""``prefailure``: empty a host that reports it is failing, before it dies.

The shortest migrations go first: if the host dies half-way, as many VMs as
possible are off it already (shortest processing time first).
"""

from vmmig.strategies import base


class Prefailure(base.Strategy):
    name = 'prefailure'

    def order(self, vms):
        return sorted(vms, key=lambda v: (v['estimate_s'], v['instance']))
