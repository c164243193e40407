#!/usr/bin/env python3
"""How long a drain takes against what it must move, how good its estimate is, and
how long planning one takes on a large cluster.

1. Drains of 10 and 40 running VMs, drawn with a fixed seed from idle, moderate
   and heavy memory writers on shared, local and volume disks, are carried out by
   the embedded conductor and simulated agents (virtual clock, default limits).
   Each migration's modelled seconds are those of the simulator's pre-copy job
   (with its dirty-rate jitter, which the estimate does not know); the modelled
   wall is those durations run in the plan's order as the dispatcher claims them
   within the limits (the simulator gives each host a clock of its own, so it has
   no single wall clock for migrations side by side). The bound is every VM's RAM
   and local disk once over the bandwidth the limits allow (the link times the
   migrations one host may send at once). Prints::

       drain ratio <vms> <wall / bound>
       estimate ratio <vms> <the dry run's estimate / the modelled wall>

2. A 10,000-host cluster of 20 VMs per host in the database: the model of it is
   read (``load s <N>``, apart), then a drain of one host planned on it::

       plan ms drain <N>

    python benchmarks/drain.py [--hosts 10000] [--seed 7]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import vmmig  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(HERE))

import sqlalchemy as sa  # noqa: E402

from vmmig import conf  # noqa: E402
from vmmig.db import api as db  # noqa: E402
from vmmig.db import models  # noqa: E402
from vmmig.db import plans as plans_db  # noqa: E402
from vmmig.db import schema  # noqa: E402
from vmmig import embedded  # noqa: E402
from vmmig.hypervisor.sim import driver as sim_driver  # noqa: E402
from vmmig.plans import cost  # noqa: E402
from vmmig.plans import model as plan_model  # noqa: E402
from vmmig import rpc  # noqa: E402
from vmmig.strategies import base as strategies  # noqa: E402

CONF = conf.CONF
MiB = 1024 * 1024
GiB = 1024 * MiB

WRITERS = {'idle': {'dirty_rate_mbps': 0, 'wws_mb': 0},
           'moderate': {'dirty_rate_mbps': 60, 'wws_mb': 256},
           'heavy': {'dirty_rate_mbps': 300, 'wws_mb': 1024}}
HOST = {'vcpus': 64, 'memory_mb': 262144, 'disk_gb': 4000, 'link_gbps': 10,
        'shared_storage': 'nfs1', 'cluster': 'c1'}


def drawn_cluster(vms, seed):
    rng = random.Random(seed)
    instances = {}
    for i in range(vms):
        location = rng.choice(('shared', 'local', 'volume'))
        disk = {'name': 'vda', 'size_gb': rng.choice((10, 20, 40)), 'location': location}
        if location == 'volume':
            disk['volume'] = 'vol-%d' % i
        instances['vm%02d' % i] = {
            'host': 'src', 'vcpus': 2, 'memory_mb': rng.choice((2048, 4096, 8192)),
            'power_state': 'running', 'disks': [disk],
            'workload': dict(WRITERS[rng.choice(sorted(WRITERS))])}
    hosts = {name: dict(HOST) for name in ['src'] + ['dst%d' % i for i in range(8)]}
    return {'hosts': hosts, 'instances': instances}


def configure(state, cluster_file, **overrides):
    from vmmig import config
    config.set_defaults()
    CONF([], project='vmmig', default_config_files=[])
    CONF.set_override('state_path', state)
    CONF.set_override('connection', 'sqlite:///%s/vmmig.sqlite' % state, group='database')
    CONF.set_override('embedded', True)
    CONF.set_override('transport_url', 'fake://')
    CONF.set_override('hypervisor', 'sim', group='drivers')
    CONF.set_override('cluster_file', cluster_file, group='sim')
    CONF.set_override('clock', 'virtual', group='sim')
    CONF.set_override('jitter', 0.3, group='sim')
    CONF.set_override('seed', 11, group='sim')
    CONF.set_override('dispatch_interval', 0.05, group='conductor')
    CONF.set_override('monitor_interval', 0.05, group='live_migration')
    CONF.set_override('driver', ['noop'], group='oslo_messaging_notifications')
    for key, value in overrides.items():
        group, name = key.split('.')
        CONF.set_override(name, value, group=group)


def modelled_drain(vms, seed):
    """(wall, bound, estimate) of a drain of ``vms`` VMs, in modelled seconds."""
    spec = drawn_cluster(vms, seed)
    durations = {}
    original = sim_driver.SimDriver.live_migrate

    def live_migrate(self, instance, dest_info, settings):
        job = original(self, instance, dest_info, settings)
        durations[instance['name']] = job._job
        return job
    sim_driver.SimDriver.live_migrate = live_migrate
    with tempfile.TemporaryDirectory(prefix='vmmig-drain-') as state:
        path = os.path.join(state, 'cluster.json')
        with open(path, 'w') as f:
            json.dump(spec, f)
        configure(state, path)
        services = embedded.EmbeddedServices().start()
        try:
            deadline = time.monotonic() + 60
            while len([h for h in db.host_list() if h['state'] == 'up']) < len(spec['hosts']):
                if time.monotonic() > deadline:
                    raise SystemExit('the simulated hosts did not come up')
                time.sleep(0.05)
            api = services.conductor.manager
            dry = api.host_maintenance_set({}, 'src', 'benchmark', dry_run=True)
            plan = api.host_maintenance_set({}, 'src', 'benchmark')
            deadline = time.monotonic() + 600
            while plans_db.plan_get(plan['id'])['state'] == 'ongoing':
                if time.monotonic() > deadline:
                    raise SystemExit('the drain did not end')
                time.sleep(0.05)
            plan = plans_db.plan_get(plan['id'])
            if plan['state'] != 'succeeded':
                raise SystemExit('the drain ended %s: %s' % (plan['state'], plan['result']))
            migrations = sorted(db.migration_list(), key=lambda m: m['id'])
            if sorted(m['instance'] for m in migrations) != sorted(spec['instances']):
                raise SystemExit('not every VM moved exactly once')
            wall = cost.schedule([(m['id'], m['source_host'], m['dest_host'],
                                   durations[m['instance']].elapsed) for m in migrations])[1]
        finally:
            services.stop()
            sim_driver.SimDriver.live_migrate = original
            db.dispose()
            rpc.cleanup()
            CONF.reset()
    max_total, max_out, _max_in = cost.limits()
    link = HOST['link_gbps'] * 1e9 / 8
    moved = sum(cost.bound_bytes(i, 'live') for i in spec['instances'].values())
    bound = moved / (link * min(max_out, max_total))
    return wall, bound, dry['estimate_s']


def big_cluster(hosts, per_host, state):
    """hosts and instances rows of a large cluster, written straight to the database."""
    configure(state, os.path.join(state, 'none.json'))
    schema.sync()
    facts = dict(HOST, cpu_vendor='Intel', cpu_features=[], os_version='Debian 12',
                 hypervisor_version='7.2.0', link_bandwidth=int(10e9 / 8),
                 vcpus_used=per_host * 2, memory_mb_used=per_host * 4096,
                 disk_gb_used=per_host * 10)
    now = time.time()
    host_rows = [dict(name='h%05d' % i, state='up', maintenance=False, facts=facts,
                      created_at=now, updated_at=now, last_heartbeat=now, reported_at=now)
                 for i in range(hosts)]
    rows = []
    for i in range(hosts):
        for j in range(per_host):
            spec = {'name': 'h%05d-vm%02d' % (i, j), 'vcpus': 2, 'memory_mb': 4096,
                    'power_state': 'running', 'storage_mode': 'ephemeral-shared',
                    'disks': [{'name': 'vda', 'size_gb': 10, 'location': 'shared'}],
                    'workload': WRITERS['moderate']}
            rows.append(dict(name=spec['name'], host='h%05d' % i, power_state='running',
                             storage_mode='ephemeral-shared', spec=spec, updated_at=now))
    with db.get_engine().begin() as conn:
        conn.execute(sa.insert(models.Host.__table__), host_rows)
        conn.execute(sa.insert(models.Instance.__table__), rows)


def plan_time(hosts, per_host):
    with tempfile.TemporaryDirectory(prefix='vmmig-drain-') as state:
        big_cluster(hosts, per_host, state)
        try:
            began = time.perf_counter()
            model = plan_model.ClusterModel.load('h00042')
            load = time.perf_counter() - began
            strategy = strategies.load('drain')
            began = time.perf_counter()
            actions, estimate = strategy.build(model, 'h00042')
            planned = time.perf_counter() - began
            if sum(a['state'] == 'pending' for a in actions) != per_host:
                raise SystemExit('the plan does not move every VM: %s' % actions)
        finally:
            db.dispose()
            CONF.reset()
    return load, planned


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--per-host', type=int, default=20)
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args()
    for vms in (10, 40):
        wall, bound, estimate = modelled_drain(vms, args.seed)
        print('drain ratio %d %.3f' % (vms, wall / bound))
        print('estimate ratio %d %.3f' % (vms, estimate / wall))
        sys.stdout.flush()
    load, planned = plan_time(args.hosts, args.per_host)
    print('load s %.2f' % load)
    print('plan ms drain %.1f' % (planned * 1000))


if __name__ == '__main__':
    main()
