#!/usr/bin/env python3
"""How long a dead host's VMs are down: detection, fencing, recovery.

A vmmig-conductor and one agent per simulated host run as processes over RabbitMQ
and PostgreSQL with vmmig's default settings; the hosts' BMC is the tests' Redfish
emulator (sushy-tools) whose power backend kills a host's agent. The agent of a
host with ``--vms`` VMs (shared storage, running) is killed, and nothing else is
done. Prints::

    detect s <N>     agent killed -> the monitor asks the BMC to power the host off
                     ([conductor] heartbeat_timeout)
    fence s <N>      power off asked -> confirmed, the recovery's plan recorded
    recovery s <N>   plan recorded -> the last VM running elsewhere (its evacuations)
    total s <N>      agent killed -> the last VM running elsewhere

With ``--libvirt``, the same for one real guest (shared disk) on host1 of the
tools/virt environment (``VMMIG_VIRT_DIR``): only its agent is killed, the BMC's
power off kills its libvirtd and QEMU, the guest is rebuilt on host2.

    python benchmarks/ha.py [--vms 20]
    python benchmarks/ha.py --libvirt
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
from vmmig.db import plans as plans_db  # noqa: E402
from vmmig.plans import states  # noqa: E402

HOST = {'vcpus': 64, 'memory_mb': 262144, 'disk_gb': 2000, 'shared_storage': 'nfs'}
# The fixture's quick timers, put back to vmmig's defaults.
DEFAULTS = {'conductor': {'heartbeat_timeout': '30', 'dispatch_interval': '1.0',
                          'progress_interval': '1.0'},
            'agent': {'heartbeat_interval': '10'}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vms', type=int, default=20)
    parser.add_argument('--libvirt', action='store_true',
                        help='One real guest under libvirt instead of simulated VMs.')
    args = parser.parse_args(argv)
    if args.libvirt:
        return libvirt_guest()
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
        asked = power_off_asked(power)
        # A conductor acts on silence only once it has heard the agents for a whole
        # heartbeat_timeout; the benchmark measures a host that dies later than that.
        time.sleep(30)
        killed = time.time()
        services.kill('agent-dead')
        report(args.vms, killed, asked)
    finally:
        for fixture in (client, services, redfish_bmc, database):
            if fixture is not None:
                fixture.cleanUp()


def power_off_asked(power):
    """{host: when the BMC was first asked to power it off}: where fencing starts (the
    recovery's plan is recorded only once the power off is confirmed)."""
    asked = {}
    set_power = power.set

    def noted(host, wanted):
        if wanted == bmc.OFF:
            asked.setdefault(host, time.time())
        return set_power(host, wanted)
    power.set = noted
    return asked


def report(vms, killed, asked, host='dead'):
    def ended():
        return [p for p in plans_db.plan_list(host=host, strategy='evacuate')
                if p['state'] in states.TERMINAL]
    tr.wait_for(ended, 150, 'the recovery of host %s' % host)
    plan = ended()[-1]
    assert plan['state'] == states.SUCCEEDED, plan
    moved = [m for m in db.migration_list(host=host) if m['migration_type'] == 'evacuate']
    assert len(moved) == vms and all(m['state'] == 'completed' for m in moved), moved
    last = max(m['finished_at'] for m in moved)
    print('vms %d' % vms)
    print('detect s %.2f' % (asked[host] - killed))
    print('fence s %.2f' % (plan['created_at'] - asked[host]))
    print('recovery s %.2f' % (last - plan['created_at']))
    print('total s %.2f' % (last - killed))


def libvirt_guest():
    from tests.functional import test_libvirt as tl
    from tests.functional import test_libvirt_ha as tlh
    from tests.functional import virt_env as ve
    import sqlalchemy as sa

    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture.cleanUp)
        return fixture

    work = tempfile.mkdtemp(prefix='vmmig-bench-ha-')
    try:
        env = use(ve.VirtEnvFixture(n_hosts=2))
        power = tlh.LibvirtHostPower(env, tl.HOSTS)
        redfish_bmc = use(bmc.RedfishBmc(power))
        database = use(vfix.DatabaseFixture('postgresql'))
        services = use(vfix.ServiceProcesses(
            list(tl.HOSTS), database.url,
            extra_conf=dict(DEFAULTS, drivers={'hypervisor': 'libvirt', 'fencing': 'redfish'},
                            ha={'bmc_file': redfish_bmc.bmc_file(
                                os.path.join(work, 'bmc.json'))},
                            coordination={'backend_url': 'file://' + work}),
            agent_conf={h: tl.agent_conf(env, h) for h in tl.HOSTS}))
        power.services = services
        asked = power_off_asked(power)
        use(tr.Client(services))  # the database and options, as the services have them
        engine = sa.create_engine(database.url)
        stack.append(engine.dispose)
        cloud = tl.Cloud(env, services, engine)
        stack.append(cloud.close)
        started = time.time()
        guest = tl.Guest('bench-ha', [cloud.disk('bench-ha')], **tl.LIGHT)
        cloud.boot(guest, 'host1')
        # As above: the host dies once the conductor has heard its agent for a while.
        time.sleep(max(0.0, started + 30 - time.time()))
        killed = time.time()
        services.kill('agent-host1')
        try:
            report(1, killed, asked, 'host1')
        except AssertionError:
            print(services.log('conductor-0')[-6000:])
            raise
        cloud.wait_reported('bench-ha', 'host2', 'running')
    finally:
        while stack:
            stack.pop()()


if __name__ == '__main__':
    main()
