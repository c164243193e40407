"""Proves the real libvirt/QEMU test environment (tools/virt) works end to end.

One guest (shared qcow2 + a volume served over NBD + a NIC on the test bridge) boots on host1,
live-migrates to host2 while tcpdump captures QEMU's announce-self RARP frames, migrates back
with production-style addressing (no URI parameters), powers off on an ACPI shutdown request
and finds its disk patterns intact at the next boot.
"""

import subprocess
import time

import pytest

from tests.functional import virt_env as ve

pytestmark = pytest.mark.libvirt

_reason = ve.unavailable_reason()
if _reason:
    pytest.skip('real libvirt environment unavailable: %s' % _reason, allow_module_level=True)

import libvirt  # noqa: E402

NBD_PORT = 10809


def _log(msg, t0=None):
    print('[virt-env] %s%s' % (msg, '' if t0 is None else ' (%.1fs)' % (time.time() - t0)),
          flush=True)


@pytest.fixture(scope='module')
def env():
    fix = ve.VirtEnvFixture(n_hosts=2)
    t0 = time.time()
    fix.setUp()
    _log('environment ready', t0)
    try:
        yield fix
    finally:
        fix.cleanUp()


def _migrate(dom, dest_uri, params, flags):
    t0 = time.time()
    dom.migrateToURI3(dest_uri, params, flags)
    return time.time() - t0


def test_guest_lifecycle_live_migration_shutdown_reboot(env):
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    c1, c2 = env.connect('host1'), env.connect('host2')
    assert c1.getHostname() == 'host1' and c2.getHostname() == 'host2'

    name = 'virtenv-check'
    disk = '%s/%s.qcow2' % (env.shared_dir, name)
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', disk, '64M'], check=True)
    volume = env.nbd(name + '-vol', 32, NBD_PORT)
    console = env.console_path(name)
    mac = ve.mac_for(name)
    xml = ve.guest_domain_xml(name, disks=[disk, volume], nic_mac=mac, ip='192.0.2.10',
                              dirty_mb=8, tick=1, console_path=console)

    # boot on host1: disk patterns written, memory checks pass
    t0 = time.time()
    dom = c1.defineXML(xml)
    dom.create()
    ve.wait_for_line(console, r'GUEST-TICK', 90, dom=dom)
    _log('booted on host1', t0)
    written = {}
    for dev in ('vda', 'vdb'):
        st = ve.disk_status(console, dev)
        assert st and st['state'] == 'written', (dev, st, ve.console_tail(console))
        written[dev] = st['md5']
    ve.wait_for_line(console, r'GUEST-MEM .* ok=yes', 30, dom=dom)
    assert 'GUEST-NET eth0 mac=%s ip=192.0.2.10' % mac in ve.console_lines(console)

    # live migration host1 -> host2 over 127.0.0.1, announce-self captured on the bridge
    cap = env.capture('ether proto 0x8035')
    flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
             | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
             | libvirt.VIR_MIGRATE_UNSAFE)      # qcow2 on a local fs; the NBD disk is shared
    params = {libvirt.VIR_MIGRATE_PARAM_URI: 'tcp://127.0.0.1',
              libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: '127.0.0.1'}
    took = _migrate(dom, env.uris['host2'], params, flags)
    before = ve.console_offset(console)     # from here on only the destination writes
    _log('live migration host1 -> host2 %.1fs' % took)
    dom2 = c2.lookupByName(name)
    assert dom2.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    with pytest.raises(libvirt.libvirtError):
        c1.lookupByName(name)
    stats = dom2.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    _log('libvirt: %s ms elapsed, %s ms downtime, %.0f MiB sent' % (
        stats.get('time_elapsed'), stats.get('downtime'),
        stats.get('memory_processed', 0) / 2.0 ** 20))
    ve.wait_for_line(console, r'GUEST-TICK', 20, after=before, dom=dom2)
    ve.wait_for_line(console, r'GUEST-MEM .* ok=yes', 20, after=before, dom=dom2)
    time.sleep(1)  # QEMU announces 5 times, 50-350 ms apart
    cap.stop()
    rarp = cap.rarp_from(mac)
    assert rarp, 'no RARP from %s captured; tcpdump saw: %s' % (mac, cap.lines)
    _log('%d RARP announce frames captured' % len(rarp))

    # back to host1 the way production does it: libvirtd over TCP by host name, migration
    # stream to the destination's migration_host (qemu.conf), no URI parameters
    took = _migrate(dom2, ve.host_tcp_uri('host1'), {}, flags)
    before = ve.console_offset(console)
    _log('live migration host2 -> host1 (no URI parameters) %.1fs' % took)
    dom = c1.lookupByName(name)
    ve.wait_for_line(console, r'GUEST-MEM .* ok=yes', 20, after=before, dom=dom)
    mem = ve.last_mem_check(console)
    assert mem['ok'], mem

    # ACPI power button -> clean power-off
    t0 = time.time()
    before = ve.console_offset(console)
    dom.shutdown()
    ve.wait_for_line(console, r'GUEST-POWEROFF', 30, after=before)
    ve.wait_for_state(dom, libvirt.VIR_DOMAIN_SHUTOFF, 30)
    _log('shut down on ACPI request', t0)

    # next boot: both disk patterns verified
    t0 = time.time()
    before = ve.console_offset(console)
    dom.create()
    for dev in ('vda', 'vdb'):
        ve.wait_for_line(console, r'GUEST-DISK-\w+ .*dev=%s\b' % dev, 90, after=before, dom=dom)
        st = ve.disk_status(console, dev, after=before)
        assert st['state'] == 'ok' and st['md5'] == written[dev], (dev, st)
    _log('rebooted with disks OK', t0)
    dom.destroy()
    dom.undefine()
