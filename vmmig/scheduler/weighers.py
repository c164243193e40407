"""Weighers rank the hosts that passed every filter: higher is better.

What migrations on their way to a host will take there counts as taken: else
every request until the host's next report would pick the same host.
"""

from vmmig.scheduler import filters


class FreeRamWeigher(object):
    def weight(self, host, request):
        facts = host['facts']
        return (facts.get('memory_mb', 0) - facts.get('memory_mb_used', 0)
                - filters.inbound_to(host, request)['memory_mb'])


class FreeVcpuWeigher(object):
    def weight(self, host, request):
        facts = host['facts']
        return (facts.get('vcpus', 0) - facts.get('vcpus_used', 0)
                - filters.inbound_to(host, request)['vcpus'])
