"""The cluster as a planner sees it: the hosts, the VMs of the host to empty, and the
room of migrations on their way, read once and then kept in memory.

A plan places its VMs one after the other, each counting the room the ones before
took (as db.inbound counts recorded migrations); on a large cluster that must
not cost a database round trip per VM and host, so placement works here.
"""

import heapq
import itertools

from vmmig.db import api as db
from vmmig.scheduler import filters
from vmmig.scheduler import host_manager


class ClusterModel(object):

    def __init__(self, hosts, instances, inbound=None):
        """``hosts``: rows as db.host_list() returns them; ``instances``: the rows of
        the VMs to place (db.instance_list()); ``inbound``: what db.inbound() returns."""
        self.hosts = {h['name']: h for h in hosts}
        self.instances = list(instances)
        self.inbound = {name: dict(room) for name, room in (inbound or {}).items()}

    @classmethod
    def load(cls, host, host_cache=None):
        """The model of the cluster for a plan about ``host``."""
        hosts = host_cache.hosts() if host_cache is not None else db.host_list()
        return cls(hosts, db.instance_list(host=host), db.inbound())

    def take(self, dest, instance):
        """Count the room ``instance`` takes on ``dest`` from now on."""
        room = self.inbound.setdefault(dest, dict(filters.NOTHING_INBOUND))
        for key, value in filters.footprint(instance).items():
            room[key] += value
        room['migrations'] += 1


class Placer(object):
    """Picks each VM's destination with the scheduler's filters and weighers.

    The hosts are kept in the weighers' order; a VM looks at them best first and
    takes the first that every filter passes, so most VMs look at a few hosts, not
    at all of them. A weigher's value for a host changes only with the room taken
    there (true of the free RAM and vCPU weighers): the host a VM went to is
    ranked again, no other.
    """

    def __init__(self, model, excluded=()):
        self.model = model
        self.manager = host_manager.HostManager()
        self._excluded = set(excluded)
        self._keys = {}
        self._heap = []
        self._tie = itertools.count()
        request = {'inbound': model.inbound}
        for name, host in model.hosts.items():
            if name not in self._excluded:
                self._push(name, host, request)

    def _push(self, name, host, request):
        key = tuple(-w.weight(host, request) for w in self.manager.weighers)
        self._keys[name] = key
        heapq.heappush(self._heap, (key, next(self._tie), name))

    def place(self, request, instance):
        """The best host for ``request``, its room counted taken; or (None, reasons):
        why no host can take it (a few hosts' reasons, and how many others refused)."""
        tried, refusals = [], []
        dest = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            key, _tie, name = entry
            if self._keys.get(name) != key:
                continue  # ranked again since: a newer entry stands for it
            tried.append(entry)
            host = self.model.hosts[name]
            reason = next((r for r in (f.reason(host, request)
                                       for _n, f in self.manager.filters) if r), None)
            if reason is None:
                dest = name
                tried.pop()
                break
            refusals.append(reason)
        for entry in tried:
            heapq.heappush(self._heap, entry)
        if dest is None:
            return None, refusals
        self.model.take(dest, instance)
        self._push(dest, self.model.hosts[dest], request)
        return dest, []
