"""Runs the enabled filters over every known host and ranks the ones that pass."""

from vmmig import conf
from vmmig import plugins

CONF = conf.CONF


class HostManager(object):

    def __init__(self):
        self.filters = [(name, plugins.load_class(plugins.FILTERS, name,
                                                  '[scheduler] enabled_filters')())
                        for name in CONF.scheduler.enabled_filters]
        self.weighers = [plugins.load_class(plugins.WEIGHERS, name, '[scheduler] weighers')()
                         for name in CONF.scheduler.weighers]

    def verdicts(self, hosts, request):
        """Every host with every reason it is refused (all filters run, not the first only)."""
        out = []
        for host in hosts:
            reasons = [r for r in (f.reason(host, request) for _n, f in self.filters) if r]
            out.append({'host': host['name'], 'eligible': not reasons, 'reasons': reasons})
        return out

    def rank(self, hosts, request):
        """Eligible hosts, best first; and the verdicts of all."""
        verdicts = self.verdicts(hosts, request)
        ok = {v['host'] for v in verdicts if v['eligible']}
        eligible = [h for h in hosts if h['name'] in ok]
        eligible.sort(key=lambda h: tuple(-w.weight(h, request) for w in self.weighers))
        return eligible, verdicts
