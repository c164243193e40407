#!/usr/bin/env python3
"""How long a dead host's VMs are down: detection, fencing, recovery.

A vmmig-conductor and one agent per simulated host run as processes over RabbitMQ
and PostgreSQL with vmmig's default settings; the hosts' BMC is the tests' Redfish
emulator (sushy-tools) whose power backend kills a host's agent. The agent of a
host with ``--vms`` VMs (shared storage, running) is killed, and nothing else is
done. Prints::

    detect s <N>     agent killed -> the monitor takes the host marked down ([conductor]
                     heartbeat_timeout)
    fence s <N>      marked down -> the BMC confirmed the power off
    recovery s <N>   power off confirmed -> the last VM running elsewhere
    total s <N>      agent killed -> the last VM running elsewhere

    python benchmarks/ha.py [--vms 20]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests import bmc  # noqa: E402
from tests import fixtures as vfix  # noqa: E402
from tests.functional import test_recovery as tr  # noqa: E402
from vmmig.db import api as db  # noqa: E402
from vmmig.db import recoveries  # noqa: E402

HOST = {'vcpus': 64, 'memory_mb': 262144, 'disk_gb': 2000, 'shared_storage': 'nfs'}
# The fixture's quick timers, put back to vmmig's defaults.
DEFAULTS = {'conductor': {'heartbeat_timeout': '30', 'dispatch_interval': '1.0',
                          'progress_interval': '1.0'},
            'agent': {'heartbeat_interval': '10'}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vms', type=int, default=20)
    args = parser.parse_args(argv)
    instances = {'vm-%02d' % i: tr._vm('dead', memory_mb=1024) for i in range(args.vms)}
    cluster = {'hosts': {'dead': HOST, 'spare-1': HOST, 'spare-2': HOST},
               'instances': instances}
    database = vfix.DatabaseFixture('postgresql')
    database.setUp()
    power = bmc.SimHostPower(sorted(cluster['hosts']))
    redfish_bmc = bmc.RedfishBmc(power)
    redfish_bmc.setUp()
    work = tempfile.mkdtemp(prefix='vmmig-bench-ha-')
    conf = dict(DEFAULTS, drivers={'fencing': 'redfish'},
                ha={'bmc_file': redfish_bmc.bmc_file(os.path.join(work, 'bmc.json'))},
                coordination={'backend_url': 'file://' + work})
    services = client = None
    try:
        services, client = tr._start(database.url, cluster, **conf)
        power.services = services
        # A conductor acts on silence only once it has heard the agents for a whole
        # heartbeat_timeout; the benchmark measures a host that dies later than that.
        time.sleep(30)
        killed = time.time()
        services.kill('agent-dead')
        tr.wait_for(lambda: [r for r in recoveries.list_(host='dead')
                             if r['state'] not in recoveries.UNFINISHED], 180,
                    'the recovery of host dead')
        rec = recoveries.list_(host='dead')[-1]
        assert rec['state'] == 'succeeded', rec
        moved = [m for m in db.migration_list(host='dead') if m['migration_type'] == 'evacuate']
        assert len(moved) == args.vms and all(m['state'] == 'completed' for m in moved)
        marked_down = rec['created_at']
        last = max(m['finished_at'] for m in moved)
        print('vms %d' % args.vms)
        print('detect s %.2f' % (marked_down - killed))
        print('fence s %.2f' % (rec['fenced_at'] - marked_down))
        print('recovery s %.2f' % (last - rec['fenced_at']))
        print('total s %.2f' % (last - killed))
    finally:
        for fixture in (client, services, redfish_bmc, database):
            if fixture is not None:
                fixture.cleanUp()


if __name__ == '__main__':
    main()
