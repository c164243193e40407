"""How long a plan takes: each VM's bytes over its link, scheduled within the limits.

A live migration is modelled round by round the way QEMU's pre-copy goes (the
closed-form model of vmmig/hypervisor/sim/precopy.py, run on a virtual clock
without jitter): all RAM, then what the guest dirtied meanwhile, until the rest
fits in the allowed downtime; local disks are copied first (block migration).
A cold migration sends its local disks (and the saved memory of a suspended VM)
once. The migrations then run in the plan's order as the dispatcher runs them:
the oldest first that max_concurrent_migrations, max_outbound_per_host and
max_inbound_per_host allow.

What a VM's guest writes is known only where its hypervisor reports it (the
simulator's ``workload``); elsewhere an idle guest is assumed, and the estimate
says so (``assumed``).
"""

import heapq

from vmmig import conf
from vmmig.hypervisor.sim import clock as sim_clock
from vmmig.hypervisor.sim import precopy

CONF = conf.CONF

MiB = 1024 * 1024
GiB = 1024 * MiB
#: a link whose speed the host does not report: 10 Gbit/s
DEFAULT_LINK = 10e9 / 8
#: rounds after which a pre-copy that does not converge is counted as given up
MAX_ROUNDS = 60
#: an idle guest, for a hypervisor that does not say what its guests write
IDLE = {'dirty_rate_mbps': 0, 'wws_mb': 0}


def link(source_facts, dest_facts):
    """Bytes/s between two hosts: the slower of their links."""
    speeds = [f.get('link_bandwidth') for f in (source_facts or {}, dest_facts or {})
              if f.get('link_bandwidth')]
    return float(min(speeds)) if speeds else DEFAULT_LINK


def local_disk_bytes(instance):
    return sum(d.get('size_gb', 0) for d in instance.get('disks') or ()
               if d.get('location') == 'local') * GiB


def live_seconds(instance, bandwidth, options=None):
    """Modelled seconds of a live migration of ``instance`` over ``bandwidth`` bytes/s."""
    options = options or {}
    lm = CONF.live_migration
    cap = options.get('bandwidth', lm.bandwidth)
    workload = instance.get('workload') or IDLE
    ram = max(int(instance.get('memory_mb') or 1) * MiB, 1)
    paused = instance.get('power_state') == 'paused'
    settings = precopy.PrecopySettings(
        ram_bytes=ram,
        wws_bytes=min(ram, int(workload.get('wws_mb', 0) * MiB)),
        dirty_rate=0 if paused else workload.get('dirty_rate_mbps', 0) * MiB,
        bandwidth=bandwidth, bandwidth_cap=cap * MiB if cap else None,
        max_downtime=options.get('max_downtime', lm.max_downtime) / 1000.0,
        disk_bytes=local_disk_bytes(instance),
        auto_converge=options.get('auto_converge', lm.permit_auto_converge),
        postcopy_permitted=False, max_rounds=MAX_ROUNDS)
    job = precopy.PrecopyJob(settings, sim_clock.VirtualClock())
    job.run()
    return job.elapsed


def cold_seconds(instance, bandwidth, options=None):
    """Modelled seconds of a cold migration: the local files once over the link."""
    size = local_disk_bytes(instance)
    if instance.get('power_state') == 'suspended':
        size += int(instance.get('memory_mb') or 0) * MiB  # the saved memory image
    return size / bandwidth


def seconds(migration_type, instance, bandwidth, options=None):
    if migration_type == 'live':
        return live_seconds(instance, bandwidth, options)
    return cold_seconds(instance, bandwidth, options)


def bound_bytes(instance, migration_type):
    """What a VM must send at the least: its RAM (live, or the image of a suspended
    one) and its local disks, once."""
    size = local_disk_bytes(instance)
    if migration_type == 'live' or instance.get('power_state') == 'suspended':
        size += int(instance.get('memory_mb') or 0) * MiB
    return size


def limits():
    c = CONF.conductor
    return c.max_concurrent_migrations, c.max_outbound_per_host, c.max_inbound_per_host


def schedule(items, max_total=None, max_outbound=None, max_inbound=None):
    """Start and end of each of ``items`` (key, source, dest, seconds), run in their
    order as the dispatcher claims them. Returns ({key: (start, end)}, makespan)."""
    defaults = limits()
    max_total = max_total or defaults[0]
    max_outbound = max_outbound or defaults[1]
    max_inbound = max_inbound or defaults[2]
    queue = list(items)
    running = []  # heap of (end, order, source, dest)
    outbound, inbound = {}, {}
    times = {}
    now = 0.0
    order = 0
    while queue or running:
        left = []
        for key, source, dest, duration in queue:
            if (len(running) < max_total and outbound.get(source, 0) < max_outbound
                    and inbound.get(dest, 0) < max_inbound):
                outbound[source] = outbound.get(source, 0) + 1
                inbound[dest] = inbound.get(dest, 0) + 1
                times[key] = (now, now + duration)
                heapq.heappush(running, (now + duration, order, source, dest))
                order += 1
            else:
                left.append((key, source, dest, duration))
        queue = left
        if not running:
            break
        now, _order, source, dest = heapq.heappop(running)
        outbound[source] -= 1
        inbound[dest] -= 1
        # Everything that ends at the same moment frees its slot before the next claim.
        while running and running[0][0] <= now:
            _end, _order, source, dest = heapq.heappop(running)
            outbound[source] -= 1
            inbound[dest] -= 1
    makespan = max((end for _start, end in times.values()), default=0.0)
    return times, makespan
