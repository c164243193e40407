"""Weighers rank the hosts that passed every filter: higher is better."""


class FreeRamWeigher(object):
    def weight(self, host, request):
        facts = host['facts']
        return facts.get('memory_mb', 0) - facts.get('memory_mb_used', 0)


class FreeVcpuWeigher(object):
    def weight(self, host, request):
        facts = host['facts']
        return facts.get('vcpus', 0) - facts.get('vcpus_used', 0)
