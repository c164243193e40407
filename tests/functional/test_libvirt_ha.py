"""HA recovery on real libvirt: a host whose agent died while its guests run.

Only the agent of host1 is killed: its libvirtd and QEMU guests run on, so the host
looks dead and is not. The monitor marks it down, powers it off through its BMC
(the sushy-tools Redfish emulator; the power backend kills host1's agent, libvirtd
and every QEMU of it, and reports off once they are gone), then rebuilds on host2
the guests on shared storage and on a volume, each in its power state; the guest
on host1's local disk stays, with the reason in the recovery's plan. Powered on again,
host1 removes the stale domains and keeps the shared disks.

Environment: as tests/functional/test_libvirt.py (``VMMIG_VIRT_DIR``).
"""

import os
import re
import signal
import time

import pytest
import sqlalchemy as sa

from tests import bmc
from tests import fixtures as vfix
from tests.functional import test_libvirt as tl
from tests.functional import virt_env as ve

pytestmark = [pytest.mark.libvirt, pytest.mark.services, pytest.mark.timeout(420)]

HOSTS = tl.HOSTS
NBD_PORT = 10812
METADATA = ('<metadata><ha:ha xmlns:ha="https://vmmig.example/ha/1" enabled="true" '
            'priority="%d"/></metadata>')


class LibvirtHostPower(bmc.PowerBackend):
    """Off: SIGKILL the host's agent, its libvirtd (and reaper) and every QEMU it
    started, and return once none runs. On: its libvirtd, then its agent, again."""

    def __init__(self, env, hosts):
        super().__init__(hosts)
        self.env = env
        self.services = None
        self.qemu_gone_at = {}

    def off(self, host):
        if 'agent-' + host in self.services.procs:
            self.services.kill('agent-' + host)
        pids = tl._host_pids(self.env, host)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        while any(tl._alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise RuntimeError('%s: %s still alive' % (host, [p for p in pids
                                                                  if tl._alive(p)]))
            time.sleep(0.05)
        self.qemu_gone_at[host] = time.time()

    def on(self, host):
        ve.run_env('host-start', host[len('host'):], base=self.env.virt_dir)
        self.services.start_agent(host)


@pytest.fixture(scope='module')
def ha_cloud(tmp_path_factory):
    reason = ve.unavailable_reason()
    if reason:
        vfix.service_missing('the real libvirt environment', reason)
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    work = str(tmp_path_factory.mktemp('ha'))
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture.cleanUp)
        return fixture

    try:
        env = use(ve.VirtEnvFixture(n_hosts=len(HOSTS)))
        power = LibvirtHostPower(env, HOSTS)
        redfish_bmc = use(bmc.RedfishBmc(power))
        database = use(vfix.DatabaseFixture(os.environ.get('VMMIG_LIBVIRT_DB', 'sqlite')))
        services = use(vfix.ServiceProcesses(
            list(HOSTS), database.url,
            extra_conf={'drivers': {'hypervisor': 'libvirt', 'fencing': 'redfish'},
                        'agent': {'heartbeat_interval': '0.5'},
                        'conductor': {'heartbeat_timeout': tl.HEARTBEAT_TIMEOUT},
                        'ha': {'bmc_file': redfish_bmc.bmc_file(
                            os.path.join(work, 'bmc.json')), 'monitor_interval': '0.2',
                            'fencing_timeout': '30'},
                        'coordination': {'backend_url': 'file://' + work}},
            agent_conf={h: tl.agent_conf(env, h) for h in HOSTS}))
        power.services = services
        engine = sa.create_engine(database.url)
        stack.append(engine.dispose)
        cloud = tl.Cloud(env, services, engine)
        stack.append(cloud.close)
        cloud.power = power
        yield cloud
    finally:
        while stack:
            stack.pop()()


def test_agent_killed_host_fenced_guests_rebuilt_stale_domains_removed(ha_cloud):
    cloud = ha_cloud
    shared = tl.Guest('ha-shared', [cloud.disk('ha-shared')], **tl.LIGHT)
    volume = tl.Guest('ha-volume', [cloud.env.nbd('ha-volume', 64, NBD_PORT)], **tl.LIGHT)
    local = tl.Guest('ha-local', [cloud.disk('ha-local', 'host1')], **tl.LIGHT)
    off = tl.Guest('ha-off', [cloud.disk('ha-off')], **tl.LIGHT)
    for guest, priority, start in ((volume, 5, True), (shared, 10, True),
                                   (local, 0, True), (off, 1, False)):
        xml = ve.guest_domain_xml(guest.name, disks=guest.disks, **guest.kwargs)
        xml = xml.replace('</name>', '</name>\n  ' + METADATA % priority, 1)
        after = guest.offset()
        dom = cloud.conns['host1'].defineXML(xml)
        if start:
            dom.create()
            guest.wait_line(r'GUEST-MEM .*ok=yes', after, 120, dom)
            for line in guest.lines(after):
                m = re.search(r'GUEST-DISK-(WRITTEN|OK) ([0-9a-f]{32}) dev=(\w+)', line)
                if m:
                    guest.written.setdefault(m.group(3), m.group(2))
            assert guest.written, guest.tail()
    for guest, power in ((shared, 'running'), (volume, 'running'), (local, 'running'),
                         (off, 'shutoff')):
        cloud.wait_reported(guest.name, 'host1', power, timeout=30)
    qemu = [p for p in tl._host_pids(cloud.env, 'host1')
            if b'qemu-system' in open('/proc/%d/cmdline' % p, 'rb').read()]
    assert len(qemu) == 3, qemu
    offsets = {g.name: g.offset() for g in (shared, volume, local)}

    # Only the agent dies; the guests run on.
    killed = time.time()
    cloud.services.kill('agent-host1')
    time.sleep(1.0)
    assert all(tl._alive(p) for p in qemu)

    deadline = time.monotonic() + 120
    while True:
        recs = cloud.rows("SELECT * FROM action_plans WHERE host = 'host1' AND "
                          "strategy = 'evacuate' AND state NOT IN ('ongoing')")
        if recs:
            break
        assert time.monotonic() < deadline, cloud.logs()
        time.sleep(0.2)
    rec = recs[-1]
    assert rec['state'] == 'partial', (rec, cloud.logs())
    assert rec['reason'].startswith('host host1 is down'), rec['reason']
    assert 'fenced: powered off by its BMC' in rec['reason'], rec['reason']
    actions = {a['instance']: a for a in cloud.rows(
        'SELECT * FROM plan_actions WHERE plan_id = %d ORDER BY position' % rec['id'])}
    # The old QEMU processes were gone before any rebuild started.
    gone = cloud.power.qemu_gone_at['host1']
    assert not any(tl._alive(p) for p in qemu)
    evacs = cloud.rows("SELECT * FROM migrations WHERE migration_type = 'evacuate' "
                       'ORDER BY id')
    assert [e['instance'] for e in evacs] == ['ha-shared', 'ha-volume', 'ha-off'], evacs
    assert min(e['started_at'] for e in evacs) > gone
    for guest, state, power in ((shared, 1, 'running'), (volume, 1, 'running'),
                                (off, 5, 'shutoff')):
        rec_ = [e for e in evacs if e['instance'] == guest.name][0]
        cloud.expect(rec_, 'completed', 'host2')
        assert cloud.locate(guest.name) == {'host2': state}
        cloud.wait_reported(guest.name, 'host2', power)
        if power == 'running':
            guest.assert_disks_verified(offsets[guest.name], cloud.dom(guest.name, 'host2'))
    assert cloud.instance('ha-local')['host'] == 'host1'
    # The plan says why the guest on the local disk stays.
    assert actions['ha-local']['state'] == 'stays', actions['ha-local']
    assert actions['ha-local']['migration_id'] is None
    assert 'local' in actions['ha-local']['reason'], actions['ha-local']
    assert 'ha-local stays' in rec['result'], rec['result']
    for guest in (shared, volume, off):
        assert actions[guest.name]['state'] == 'moved', actions[guest.name]
    tl._log('agent killed -> recovery %s in %.1f s' % (rec['state'],
                                                       rec['finished_at'] - killed))

    # Powered on again: the stale domains go, the shared disks and the volume stay.
    files = [d for g in (shared, off) for d in g.disks]
    cloud.power.set('host1', bmc.ON)
    cloud.services.wait_for_hosts(['host1'])
    import libvirt
    cloud.conns['host1'] = libvirt.open(cloud.env.uris['host1'])
    deadline = time.monotonic() + 30
    while any(name in cloud.locate(name) and 'host1' in cloud.locate(name)
              for name in ('ha-shared', 'ha-volume', 'ha-off')):
        assert time.monotonic() < deadline, {n: cloud.locate(n) for n in (
            'ha-shared', 'ha-volume', 'ha-off')}
        time.sleep(0.2)
    assert all(os.path.exists(f) for f in files), files
    assert cloud.locate('ha-local') == {'host1': 5}
    for guest in (shared, volume):
        assert cloud.locate(guest.name) == {'host2': 1}
    host = cloud.rows("SELECT * FROM hosts WHERE name = 'host1'")[0]
    assert host['state'] == 'up' and host['maintenance'], host
    for guest in (shared, volume, off, local):
        cloud.remove(guest.name)
