"""The libvirt driver end to end: real QEMU (TCG) guests under two real libvirt daemons.

The conductor and one agent per host run as separate processes over RabbitMQ
(``[drivers] hypervisor = libvirt``), each agent with its own ``[libvirt]``
section. Guests are defined and started on host1 through libvirt directly; the
agents report them, and every migration is asked for through the CLI or the
conductor's RPC API. What is checked is what an operator would see: where the
guest runs (on exactly one host), what its console says (memory checksum,
disk pattern, ACPI power-off), the packets on the test bridge (RARP announce),
and the migration record.

One environment for the module; the tests run in file order and hand some
guests on (a test that finds its guest missing boots it again). The evacuation
kills host1 and so comes last.

Environment: ``VMMIG_VIRT_DIR`` / ``VMMIG_VIRT_NETNS`` (see tools/virt), and
``VMMIG_LIBVIRT_DB`` = sqlite (default) or postgresql.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.functional import virt_env as ve

pytestmark = [pytest.mark.libvirt, pytest.mark.services, pytest.mark.timeout(240)]

HOSTS = ('host1', 'host2')
TERMINAL = ('completed', 'failed', 'cancelled', 'error')
HEARTBEAT_TIMEOUT = 3.0
FENCING_GRACE = 4.0
NBD_PORT = 10811
# no_timer_check: on a loaded two-core machine a TCG guest may miss the timer interrupts
# the kernel expects at boot and panic ("IO-APIC + timer doesn't work").
BOOT = 'no_timer_check'
# Light guests: the recipe's hazard list says only these may be asked to stay healthy
# across a switch-over. Heavy ones rewrite 24 MiB every 0.25 s (~96 MiB/s), far above
# the bandwidth caps used with them, so pre-copy cannot converge.
LIGHT = dict(dirty_mb=2, tick=1, extra_cmdline=BOOT)
HEAVY = dict(dirty_mb=24, tick=0.25, extra_cmdline=BOOT)
CPU_TCG_LACKS = """<cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
    <feature policy='require' name='sha-ni'/>
  </cpu>"""


def _log(msg):
    print('[libvirt] %s' % msg, flush=True)


class Guest(object):
    """A test guest: its name, console and what it said at its first boot."""

    def __init__(self, name, disks, **kwargs):
        self.name = name
        self.disks = disks   # [path or NBD spec]; a path under a host's local dir moves
        self.kwargs = kwargs
        self.console = os.path.join(ve.virt_dir(), 'console', name + '.log')
        self.mac = ve.mac_for(name) if kwargs.get('nic_mac') else None
        self.sum0 = None
        self.written = {}

    def offset(self):
        return ve.console_offset(self.console)

    def lines(self, after=0):
        return ve.console_lines(self.console, after)

    def tail(self):
        return ve.console_tail(self.console, 15)

    def wait_line(self, regex, after, timeout=60, dom=None):
        return ve.wait_for_line(self.console, regex, timeout, after=after, dom=dom)

    def assert_memory_intact(self, after, dom, timeout=30):
        """A memory check printed after ``after``: the checksum of boot, every slice good."""
        self.wait_line(r'GUEST-MEM .*ok=', after, timeout, dom)
        mem = ve.last_mem_check(self.console, after)
        assert mem['ok'] and mem['sum'] == self.sum0, (
            'memory of %s changed: %s (boot: %s)\n%s' % (self.name, mem, self.sum0, self.tail()))
        assert not any('GUEST-BOOTED' in line for line in self.lines(after)), (
            '%s rebooted:\n%s' % (self.name, self.tail()))

    def assert_disks_verified(self, after, dom, timeout=90):
        """Booted again: every disk holds the pattern its first boot wrote."""
        for dev, md5 in self.written.items():
            self.wait_line(r'GUEST-DISK-\w+ .*dev=%s\b' % dev, after, timeout, dom)
            st = ve.disk_status(self.console, dev, after)
            assert st['state'] == 'ok' and st['md5'] == md5, (
                '%s %s: %s, first boot wrote %s\n%s' % (self.name, dev, st, md5, self.tail()))


class Cloud(object):
    """The environment, the services, and the questions the tests ask of both."""

    def __init__(self, env, services, engine):
        self.env = env
        self.services = services
        self.engine = engine
        self.hosts = tuple(env.hosts)
        import libvirt
        # Not env.connect(): closing the connection of a killed daemon must not fail.
        self.conns = {h: libvirt.open(env.uris[h]) for h in self.hosts}

    def close(self):
        for conn in self.conns.values():
            try:
                conn.close()
            except Exception:  # noqa: its daemon may be dead (the evacuation test)
                pass

    # Guests ------------------------------------------------------------------

    def disk(self, name, where='shared', size_mb=64):
        directory = self.env.shared_dir if where == 'shared' else self.env.local_dir(where)
        path = os.path.join(directory, name + '.qcow2')
        if not os.path.exists(path):
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path,
                            '%dM' % size_mb], check=True)
        return path

    def is_local(self, disk):
        return isinstance(disk, str) and any(disk.startswith(self.env.local_dir(h) + '/')
                                             for h in self.hosts)

    def boot(self, guest, host='host1', cpu=None, wait=True):
        """Define and start ``guest`` on ``host`` (through libvirt, not vmmig).

        A local disk starts afresh in ``host``'s local dir, and copies on other hosts go:
        a live block migration refuses to overwrite one.
        """
        self.remove(guest.name)
        disks = []
        for disk in guest.disks:
            if self.is_local(disk):
                name = os.path.basename(disk)[:-len('.qcow2')]
                for h in self.hosts:
                    path = os.path.join(self.env.local_dir(h), name + '.qcow2')
                    if os.path.exists(path):
                        os.unlink(path)
                guest.written = {}
                disk = self.disk(name, host)
            disks.append(disk)
        guest.disks = disks
        xml = ve.guest_domain_xml(guest.name, disks=guest.disks, **guest.kwargs)
        if cpu:
            xml = xml.replace('  <features>', '  %s\n  <features>' % cpu, 1)
        after = guest.offset()
        dom = self.conns[host].defineXML(xml)
        dom.create()
        if wait:
            guest.wait_line(r'GUEST-MEM .*ok=yes', after, 90, dom)
            sum0 = re.search(r'GUEST-SUM0 ([0-9a-f]{32})', '\n'.join(guest.lines(after)))
            guest.sum0 = sum0.group(1)
            for line in guest.lines(after):
                m = re.search(r'GUEST-DISK-(WRITTEN|OK) ([0-9a-f]{32}) dev=(\w+)', line)
                if m:
                    guest.written.setdefault(m.group(3), m.group(2))
            self.wait_reported(guest.name, host, 'running')
        return dom

    def define(self, xml, host='host1'):
        return self.conns[host].defineXML(xml)

    def remove(self, name):
        for conn in self.conns.values():
            try:
                dom = conn.lookupByName(name)
            except Exception:  # noqa: not there
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(1)  # VIR_DOMAIN_UNDEFINE_MANAGED_SAVE

    def dom(self, name, host):
        return self.conns[host].lookupByName(name)

    def locate(self, name):
        """{host: libvirt state} of every host that defines ``name``."""
        where = {}
        for host, conn in self.conns.items():
            try:
                where[host] = conn.lookupByName(name).state()[0]
            except Exception:  # noqa: not defined there (or that daemon is dead)
                pass
        return where

    def assert_only_on(self, name, host, state=1):
        """Defined on ``host`` alone, in libvirt ``state`` (1 running, 5 shut off)."""
        where = self.locate(name)
        assert where == {host: state}, '%s: expected {%s: %s}, found %s' % (
            name, host, state, where)

    def ensure(self, guest, host, running=True):
        """The guest as an earlier test left it, or booted afresh when it is not."""
        where = self.locate(guest.name)
        if guest.sum0 and where == {host: 1 if running else 5}:
            return self.dom(guest.name, host)
        _log('%s is %s, not %s on %s: booting it again' % (
            guest.name, where, 'running' if running else 'shut off', host))
        return self.boot(guest, host)

    # The record ------------------------------------------------------------------

    def rows(self, query, **params):
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(query), params).mappings()]

    def record(self, migration_id):
        return self.rows('SELECT * FROM migrations WHERE id = :i', i=migration_id)[0]

    def instance(self, name):
        rows = self.rows('SELECT * FROM instances WHERE name = :n', n=name)
        return rows[0] if rows else None

    def facts(self, host):
        """What ``host``'s agent last reported of it, as the conductor keeps it."""
        facts = self.rows('SELECT facts FROM hosts WHERE name = :n', n=host)[0]['facts']
        return json.loads(facts) if isinstance(facts, str) else facts  # SQLite: text

    def wait_reported(self, name, host, power_state=None, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            row = self.instance(name)
            if row and row['host'] == host and power_state in (None, row['power_state']):
                return row
            assert time.monotonic() < deadline, '%s not reported %s on %s: %s' % (
                name, power_state, host, row)
            time.sleep(0.1)

    def wait_state(self, migration_id, wanted, timeout=120, check=None):
        deadline = time.monotonic() + timeout
        while True:
            rec = self.record(migration_id)
            if rec['state'] in wanted and (check is None or check(rec)):
                return rec
            if rec['state'] in TERMINAL and rec['state'] not in wanted:
                raise AssertionError('migration %s ended %s, waiting for %s: %s\n%s'
                                     % (migration_id, rec['state'], wanted, rec, self.logs()))
            if time.monotonic() > deadline:
                raise AssertionError('migration %s not %s in %d s: %s\n%s' % (
                    migration_id, wanted, timeout, rec, self.logs()))
            time.sleep(0.1)

    def wait_ended(self, migration_id, timeout=120):
        return self.wait_state(migration_id, TERMINAL, timeout)

    def expect(self, rec, state, vm_location):
        """The record ended ``state`` with the VM at ``vm_location`` (else: why not)."""
        assert (rec['state'], rec['vm_location']) == (state, vm_location), (
            'migration %s: %s at %s, expected %s at %s; reason: %s\n%s\n%s' % (
                rec['id'], rec['state'], rec['vm_location'], state, vm_location,
                rec['reason'], rec, self.logs()))

    def logs(self, n=2500):
        return '\n'.join('--- %s\n%s' % (p, self.services.log(p)[-n:])
                         for p in ['conductor-0'] + ['agent-' + h for h in self.hosts])

    # Requests ------------------------------------------------------------------------

    def cli(self, *args):
        result = self.services.cli(*args, check=False)
        return result.returncode, result.stdout, result.stderr

    def migrate(self, name, host, live=True, *options):
        args = ['server', 'migrate', name, '--host', host, '-f', 'json']
        if live:
            args.append('--live-migration')
        code, out, err = self.cli(*(args + list(options)))
        assert code == 0 and out, 'migrate %s refused: %s%s' % (name, out, err)
        return json.loads(out)

    def rpc(self, method, **kwargs):
        """Call the conductor's RPC API from a process of its own; its JSON answer."""
        code = ('import json, sys\n'
                'from vmmig import config\n'
                'config.parse_args(sys.argv[1:], setup_logging=False)\n'
                'from vmmig.conductor import rpcapi\n'
                'from vmmig import context\n'
                'api = rpcapi.ConductorAPI(context=context.new("tester", ["admin"]))\n'
                'print(json.dumps(getattr(api, %r)(**%r)))\n'
                % (method, kwargs))
        out = subprocess.run([sys.executable, '-c', code,
                              '--config-file', self.services.config_file],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, '%s failed: %s' % (method, out.stderr[-2000:])
        return json.loads(out.stdout)

    def running_migration(self, migration_id, min_bytes=16 * 2 ** 20):
        """Wait until the job has moved ``min_bytes``: pre-copy is under way."""
        return self.wait_state(migration_id, ('running',), 60,
                               lambda rec: (rec['bytes_processed'] or 0) >= min_bytes)


@pytest.fixture(scope='module')
def cloud():
    reason = ve.unavailable_reason()
    if reason:
        vfix.service_missing('the real libvirt environment', reason)
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture.cleanUp)
        return fixture

    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors raise; no stderr
    t0 = time.time()
    try:
        env = use(ve.VirtEnvFixture(n_hosts=len(HOSTS)))
        _log('virt env ready in %.1f s (%s, netns %s)'
             % (time.time() - t0, env.virt_dir, env.netns))
        database = use(vfix.DatabaseFixture(os.environ.get('VMMIG_LIBVIRT_DB', 'sqlite')))
        services = use(vfix.ServiceProcesses(
            list(HOSTS), database.url,
            extra_conf={'drivers': {'hypervisor': 'libvirt', 'fencing': 'heartbeat'},
                        'agent': {'heartbeat_interval': '0.5'},
                        'conductor': {'heartbeat_timeout': HEARTBEAT_TIMEOUT,
                                      'fencing_grace': FENCING_GRACE},
                        'cold_migration': {'shutdown_timeout': '30'}},
            agent_conf={h: agent_conf(env, h) for h in HOSTS}))
        engine = sa.create_engine(database.url)
        stack.append(engine.dispose)
        _log('services up in %.1f s' % (time.time() - t0))
        cloud = Cloud(env, services, engine)
        stack.append(cloud.close)
        yield cloud
    finally:
        while stack:
            stack.pop()()


def agent_conf(env, host):
    """The [libvirt] section of one host's agent."""
    address = '%s.%s' % (ve.HOST_NET, host[len('host'):])
    return {'libvirt': {
        'uri': env.uris[host],
        # How the OTHER daemon reaches this one (peer-to-peer migration).
        'peer_uri': ve.host_tcp_uri(host),
        'local_storage_path': env.local_dir(host),
        'shared_storage_path': env.shared_dir,
        # libvirtd runs in a mount namespace of its own: /var/lib/libvirt there is this.
        'managed_save_path': os.path.join(env.virt_dir, 'hosts', host, 'lib', 'qemu', 'save'),
        'migration_uri': 'tcp://%s' % address,
        'migration_listen_address': address,
        # The test guests boot a kernel of the image directory and log their console
        # under the virt dir: files a definition an agent receives may name.
        'allowed_paths': ','.join([os.path.join(env.virt_dir, 'img'),
                                   os.path.join(env.virt_dir, 'console'), '/usr/bin']),
    }}


# Guests handed from test to test (each test boots its own when it finds none).
SHARED = 'lv-shared'
LOCAL = 'lv-local'
VOLUME = 'lv-volume'
SHUT_OFF = 'lv-shut-off'


@pytest.fixture(scope='module')
def guests(cloud):
    # A reused environment keeps the disks of an earlier run: start from none.
    for name in (SHARED, LOCAL, VOLUME):
        cloud.remove(name)
        for directory in [cloud.env.shared_dir] + [cloud.env.local_dir(h) for h in HOSTS]:
            path = os.path.join(directory, name + '.qcow2')
            if os.path.exists(path):
                os.unlink(path)
    return {
        SHARED: Guest(SHARED, [cloud.disk(SHARED)], nic_mac='auto', ip='192.0.2.11', **LIGHT),
        LOCAL: Guest(LOCAL, [cloud.disk(LOCAL, 'host1')], **LIGHT),
        VOLUME: Guest(VOLUME, [cloud.env.nbd(VOLUME, 64, NBD_PORT)], **LIGHT),
    }


def assert_live_completed(cloud, rec, name, dest):
    cloud.expect(rec, 'completed', dest)
    assert rec['dest_host'] == dest, rec
    assert rec['downtime_ms'] and 0 < rec['downtime_ms'] < 5000, rec
    cloud.assert_only_on(name, dest)
    cloud.wait_reported(name, dest, 'running')


# Live migration in each storage mode ------------------------------------------------------

def test_host_facts_list_the_features_the_cpu_model_implies(cloud):
    """The capabilities list only the features beyond the host's model; a guest's CPU
    names an older model and the features beyond it. What the agent reports must hold
    both, or the CPU filter refuses a guest for a feature its destination has."""
    name = 'lv-cpu-facts'
    cloud.boot(Guest(name, [], **LIGHT), 'host1', wait=False)
    try:
        live = ET.fromstring(cloud.conns['host1'].lookupByName(name).XMLDesc(0))
        wanted = {f.get('name') for f in live.findall('./cpu/feature')
                  if f.get('policy', 'require') == 'require'}
    finally:
        cloud.remove(name)
    for host in HOSTS:
        features = set(cloud.facts(host)['cpu_features'])
        # Every x86-64 CPU model has these; no capabilities list names them beyond one.
        assert {'fpu', 'sse2', 'lm'} <= features, (host, sorted(features))
        assert wanted <= features, '%s lacks %s of a default guest' % (
            host, sorted(wanted - features))


def test_live_shared_storage_announces_the_guest(cloud, guests):
    guest = guests[SHARED]
    cloud.ensure(guest, 'host1')
    capture = cloud.env.capture('ether proto 0x8035')
    queued = cloud.migrate(SHARED, 'host2')
    assert (queued['storage_mode'], queued['source_host']) == ('ephemeral-shared', 'host1')
    rec = cloud.wait_ended(queued['id'])
    after = guest.offset()
    assert_live_completed(cloud, rec, SHARED, 'host2')
    guest.assert_memory_intact(after, cloud.dom(SHARED, 'host2'))
    time.sleep(0.5)  # the announce rounds run 50-550 ms apart
    capture.stop()
    assert capture.rarp_from(guest.mac), 'no RARP from %s on the bridge: %s' % (
        guest.mac, capture.lines)
    _log('shared: downtime %s ms, %d RARP frames' % (rec['downtime_ms'],
                                                     len(capture.rarp_from(guest.mac))))


def test_live_local_storage_copies_the_disk(cloud, guests):
    guest = guests[LOCAL]
    cloud.ensure(guest, 'host1')
    source_disk = guest.disks[0]
    queued = cloud.migrate(LOCAL, 'host2')
    assert queued['storage_mode'] == 'ephemeral-local'
    rec = cloud.wait_ended(queued['id'])
    after = guest.offset()
    assert_live_completed(cloud, rec, LOCAL, 'host2')
    assert rec['disk_total'], rec
    moved = os.path.join(cloud.env.local_dir('host2'), os.path.basename(source_disk))
    assert os.path.exists(moved) and not os.path.exists(source_disk)
    for xml in (cloud.dom(LOCAL, 'host2').XMLDesc(0), cloud.dom(LOCAL, 'host2').XMLDesc(2)):
        # live and persistent (2 = VIR_DOMAIN_XML_INACTIVE) definitions
        assert moved in xml and source_disk not in xml, xml
    guest.assert_memory_intact(after, cloud.dom(LOCAL, 'host2'))
    guest.disks = [moved]


def test_live_volume_only(cloud, guests):
    guest = guests[VOLUME]
    cloud.ensure(guest, 'host1')
    queued = cloud.migrate(VOLUME, 'host2')
    assert queued['storage_mode'] == 'volume-only'
    rec = cloud.wait_ended(queued['id'])
    after = guest.offset()
    assert_live_completed(cloud, rec, VOLUME, 'host2')
    guest.assert_memory_intact(after, cloud.dom(VOLUME, 'host2'))


# Cold migration -------------------------------------------------------------------------------

def test_cold_suspended_keeps_the_memory(cloud, guests):
    guest = guests[LOCAL]
    dom = cloud.ensure(guest, 'host2')
    host = [h for h in cloud.locate(LOCAL)][0]
    other = 'host1' if host == 'host2' else 'host2'
    dom.managedSave(0)
    cloud.wait_reported(LOCAL, host, 'suspended')
    queued = cloud.migrate(LOCAL, other, False)
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'completed', other)
    assert rec['checksum'], rec
    cloud.assert_only_on(LOCAL, other, 5)
    dom = cloud.dom(LOCAL, other)
    assert dom.hasManagedSaveImage(0), 'arrived without its saved memory'
    cloud.wait_reported(LOCAL, other, 'suspended')
    after = guest.offset()
    dom.create()  # restores the saved memory
    guest.assert_memory_intact(after, dom)
    guest.disks = [os.path.join(cloud.env.local_dir(other), os.path.basename(guest.disks[0]))]


def test_cold_shut_off_vm_boots_with_its_disk(cloud, guests):
    guest = guests[LOCAL]
    dom = cloud.ensure(guest, 'host1')
    host = [h for h in cloud.locate(LOCAL)][0]
    other = 'host1' if host == 'host2' else 'host2'
    dom.destroy()
    cloud.wait_reported(LOCAL, host, 'shutoff')
    queued = cloud.migrate(LOCAL, other, False)
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'completed', other)
    cloud.assert_only_on(LOCAL, other, 5)
    after = guest.offset()
    dom = cloud.dom(LOCAL, other)
    dom.create()
    guest.assert_disks_verified(after, dom)
    assert not os.path.exists(guest.disks[0]), 'the source disk was left behind'


def test_cold_with_shutdown_powers_off_gracefully(cloud, guests):
    guest = guests[SHARED]
    cloud.ensure(guest, 'host2')
    after = guest.offset()
    queued = cloud.migrate(SHARED, 'host1', False, '--shutdown')
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'completed', 'host1')
    assert 'graceful' in (rec['reason'] or ''), rec
    assert any('GUEST-POWEROFF' in line for line in guest.lines(after)), guest.tail()
    cloud.assert_only_on(SHARED, 'host1')
    guest.assert_disks_verified(after, cloud.dom(SHARED, 'host1'))
    cloud.wait_reported(SHARED, 'host1', 'running')


# Control of a running live migration -------------------------------------------------------

HEAVY_GUEST = 'lv-heavy'
# Far below the heavy guest's dirty rate, fast enough for a pause to finish in seconds.
HEAVY_CAP = 32
# completion_timeout is seconds per GiB of guest data: 20 s/GiB is ~5 s for these guests.
QUICK_TIMEOUT = 20


@pytest.fixture(scope='module')
def heavy(cloud):
    return Guest(HEAVY_GUEST, [cloud.disk(HEAVY_GUEST)], **HEAVY)


def _running_somewhere(cloud, guest):
    """(domain, its host, the other host): wherever an earlier test left it running."""
    where = cloud.locate(guest.name)
    if guest.sum0 and len(where) == 1 and list(where.values()) == [1]:
        host = list(where)[0]
    else:
        host = 'host1'
        cloud.boot(guest, host)
    return cloud.dom(guest.name, host), host, 'host2' if host == 'host1' else 'host1'


def _assert_stayed(cloud, guest, rec, host):
    """Aborted: the guest runs on, healthy, where it was; the destination holds nothing."""
    after = guest.offset()
    cloud.assert_only_on(guest.name, host)
    guest.assert_memory_intact(after, cloud.dom(guest.name, host))
    assert cloud.instance(guest.name)['host'] == host


def _assert_arrived(cloud, guest, rec, dest):
    """Completed under a heavy load: the record and where the VM is (not its health: a
    TCG guest switched over while it rewrites memory may die there, see the recipe)."""
    assert rec['dest_host'] == dest
    where = cloud.locate(guest.name)
    assert list(where) == [dest], '%s defined on %s, expected %s only' % (
        guest.name, where, dest)
    if where[dest] != 1:
        assert where[dest] == 5, 'left in libvirt state %s on %s' % (where[dest], dest)
        _log('%s died on %s after the switch-over (the TCG hazard); console:\n%s'
             % (guest.name, dest, guest.tail()))
    cloud.wait_reported(guest.name, dest)


def test_abort_running_live_migration(cloud, heavy):
    _dom, src, dst = _running_somewhere(cloud, heavy)
    queued = cloud.migrate(HEAVY_GUEST, dst, True, '--bandwidth', str(HEAVY_CAP))
    cloud.running_migration(queued['id'])
    code, out, err = cloud.cli('migration', 'abort', str(queued['id']), '-f', 'json')
    assert code == 0, out + err
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'cancelled', src)
    assert rec['abort_requested']
    _assert_stayed(cloud, heavy, rec, src)


def test_timeout_action_abort(cloud, heavy):
    _dom, src, dst = _running_somewhere(cloud, heavy)
    queued = cloud.rpc('migrate_server', instance=HEAVY_GUEST, migration_type='live',
                       host=dst, options={'bandwidth': HEAVY_CAP,
                                          'completion_timeout': QUICK_TIMEOUT,
                                          'timeout_action': 'abort'})
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'failed', src)
    assert 'timeout action' in rec['reason'] and not rec['abort_requested'], rec
    _assert_stayed(cloud, heavy, rec, src)


def test_timeout_action_force_complete_postcopy(cloud, heavy):
    _dom, src, dst = _running_somewhere(cloud, heavy)
    queued = cloud.rpc('migrate_server', instance=HEAVY_GUEST, migration_type='live',
                       host=dst, options={'bandwidth': HEAVY_CAP, 'post_copy': True,
                                          'completion_timeout': QUICK_TIMEOUT,
                                          'timeout_action': 'force_complete_postcopy'})
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'completed', dst)
    assert rec['postcopy'], 'not in post-copy: %s\n%s' % (rec, cloud.logs())
    assert 'switching to post-copy: did not complete within' in rec['reason'], rec
    _assert_arrived(cloud, heavy, rec, dst)


def test_timeout_action_pause(cloud, heavy):
    _dom, src, dst = _running_somewhere(cloud, heavy)
    queued = cloud.rpc('migrate_server', instance=HEAVY_GUEST, migration_type='live',
                       host=dst, options={'bandwidth': HEAVY_CAP,
                                          'completion_timeout': QUICK_TIMEOUT,
                                          'timeout_action': 'pause'})
    rec = cloud.wait_ended(queued['id'])
    cloud.expect(rec, 'completed', dst)
    assert not rec['postcopy'], rec
    assert 'pausing the guest: did not complete within' in (rec['reason'] or ''), rec
    _assert_arrived(cloud, heavy, rec, dst)
    cloud.remove(HEAVY_GUEST)


def test_force_complete_by_post_copy(cloud, guests):
    """A light guest slowed by a low cap, forced by the operator: post-copy, and healthy."""
    guest = guests[VOLUME]
    _dom, src, dst = _running_somewhere(cloud, guest)
    queued = cloud.migrate(VOLUME, dst, True, '--bandwidth', '2', '--post-copy')
    cloud.running_migration(queued['id'], 4 * 2 ** 20)
    code, out, err = cloud.cli('migration', 'force-complete', str(queued['id']), '-f', 'json')
    assert code == 0, out + err
    rec = cloud.wait_ended(queued['id'])
    after = guest.offset()
    cloud.expect(rec, 'completed', dst)
    assert rec['postcopy'] and rec['force_complete_requested'], rec
    assert 'switching to post-copy: forced to complete on request' in rec['reason'], rec
    cloud.assert_only_on(VOLUME, dst)
    guest.assert_memory_intact(after, cloud.dom(VOLUME, dst))
    cloud.wait_reported(VOLUME, dst, 'running')


def test_conductor_killed_mid_job_the_guest_runs_on_the_destination(cloud):
    """SIGKILL of the conductor while a live migration's job runs; started again, it
    adopts the job. A low cap keeps a light guest from converging, so the timeout action
    pauses it to finish: it arrives paused, and runs on the destination only if the
    finish resumes it, as it ran when the job started (the source's copy is gone by
    then, and the hosts' reports saw it paused)."""
    name = 'lv-adopted'
    guest = Guest(name, [cloud.disk(name)], **LIGHT)
    cloud.boot(guest, 'host1')
    try:
        queued = cloud.rpc('migrate_server', instance=name, migration_type='live',
                           host='host2', options={'bandwidth': 2,
                                                  'completion_timeout': QUICK_TIMEOUT,
                                                  'timeout_action': 'pause'})
        cloud.running_migration(queued['id'], 2 * 2 ** 20)
        cloud.services.kill('conductor-0')
        assert cloud.record(queued['id'])['state'] == 'running'
        time.sleep(1.0)
        cloud.services.start_conductor('conductor-0')
        rec = cloud.wait_ended(queued['id'])
        after = guest.offset()
        assert 'adopting it from conductor-0' in cloud.services.log('conductor-0')
        cloud.expect(rec, 'completed', 'host2')
        assert 'pausing the guest: did not complete within' in (rec['reason'] or ''), rec
        # Running on host2 alone (libvirt state 1), healthy, and so recorded.
        cloud.assert_only_on(name, 'host2')
        guest.assert_memory_intact(after, cloud.dom(name, 'host2'))
        cloud.wait_reported(name, 'host2', 'running')
    finally:
        cloud.remove(name)


# Refusals ------------------------------------------------------------------------------------

def _refused(cloud, name, host, live, *words):
    """Refused before anything is recorded, for every reason given, the VM left alone."""
    before = cloud.locate(name)
    args = ['server', 'migrate', name, '--host', host, '-f', 'json']
    if live:
        args.append('--live-migration')
    code, out, err = cloud.cli(*args)
    assert code == 1, 'not refused: %s %s' % (out, err)
    for word in words:
        assert word in err, 'refusal of %s does not say %r: %s' % (name, word, err)
    assert not cloud.rows('SELECT id FROM migrations WHERE instance = :n', n=name)
    assert cloud.locate(name) == before
    _log('refused %s: %s' % (name, err.strip()))


def test_refused_too_little_memory(cloud):
    facts = cloud.facts('host2')
    name = 'lv-bigmem'
    xml = ve.guest_domain_xml(name, memory_mib=facts['memory_mb'] * 2)
    cloud.define(xml)
    try:
        cloud.wait_reported(name, 'host1', 'shutoff')
        _refused(cloud, name, 'host2', False, 'RAM', 'not enough room on host2')
    finally:
        cloud.remove(name)


def test_refused_cpu_feature_the_destination_lacks(cloud):
    """The host CPU has sha-ni (the scheduler's filter passes), TCG cannot give it to a
    guest: the destination's libvirt (compareHypervisorCPU) refuses."""
    name = 'lv-cpu'
    guest = Guest(name, [], **LIGHT)
    # check='none': TCG starts the guest without the feature instead of refusing.
    cloud.boot(guest, 'host1', cpu=CPU_TCG_LACKS, wait=False)
    try:
        cloud.wait_reported(name, 'host1', 'running')
        _refused(cloud, name, 'host2', True, 'sha-ni')
    finally:
        cloud.remove(name)


def test_cold_define_refuses_a_disk_outside_the_storage_path(cloud, tmp_path):
    """A definition that came over RPC naming a disk outside the agent's storage (here a
    file of the test's own) is refused, and libvirt defines nothing."""
    from vmmig import conf
    from vmmig import exception
    from vmmig.hypervisor.libvirt import driver as libvirt_driver

    outside = tmp_path / 'outside.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '--', str(outside), '1M'],
                   check=True)
    name = 'lv-hostile'
    xml = ve.guest_domain_xml(name, disks=[str(outside)], base=cloud.env.virt_dir)
    instance = {'name': name, 'power_state': 'shutoff', 'xml': xml, 'pci_devices': [],
                'vgpus': [], 'local_storage_path': cloud.env.local_dir('host1'),
                'disks': [{'name': 'vda', 'location': 'local', 'path': str(outside)}]}
    fixture = vfix.ConfFixture()
    fixture.setUp()
    try:
        for key, value in agent_conf(cloud.env, 'host2')['libvirt'].items():
            conf.CONF.set_override(key, value.split(',') if key == 'allowed_paths' else value,
                                   group='libvirt')
        driver = libvirt_driver.LibvirtDriver(conf.CONF, 'host2')
        driver.init_host()
        try:
            with pytest.raises(exception.InvalidDefinition) as err:
                driver.cold_define(instance, [])
            assert str(outside) in str(err.value)
        finally:
            driver.cleanup_host()
    finally:
        fixture.cleanUp()
    import libvirt
    with pytest.raises(libvirt.libvirtError):
        cloud.conns['host2'].lookupByName(name)


def test_refused_pci_passthrough(cloud):
    name = 'lv-pci'
    hostdev = """    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x00' slot='0x1f' function='0x0'/></source>
    </hostdev>
"""
    xml = ve.guest_domain_xml(name).replace('    <serial', hostdev + '    <serial', 1)
    cloud.define(xml)  # defined only: there is no such device to start it with
    try:
        cloud.wait_reported(name, 'host1', 'shutoff')
        _refused(cloud, name, 'host2', False, 'PCI passthrough', '0000:00:1f.0')
    finally:
        cloud.remove(name)


# Evacuation (last: it kills host1) --------------------------------------------------------------

def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (FileNotFoundError, ProcessLookupError):
        return False


def _host_pids(env, host):
    """libvirtd, its reaper and every QEMU of a host, from the pid files they write."""
    root = os.path.join(env.virt_dir, 'hosts', host)
    files = [os.path.join(root, 'libvirtd.pid'), os.path.join(root, 'reaper.pid')]
    qemu = os.path.join(root, 'run', 'qemu')
    files += [os.path.join(qemu, f) for f in os.listdir(qemu) if f.endswith('.pid')]
    pids = []
    for path in files:
        try:
            with open(path) as f:
                pids.append(int(f.read().strip()))
        except (FileNotFoundError, ValueError):
            pass
    return [p for p in pids if _alive(p)]


def test_evacuation_after_host_death(cloud, guests):
    guest = guests[SHARED]
    cloud.ensure(guest, 'host1')
    # Only this guest on host1: the others would be evacuated with it.
    for dom in cloud.conns['host1'].listAllDomains():
        if dom.name() != SHARED:
            cloud.remove(dom.name())
    # And a shut-off guest on shared storage: evacuated, it stays shut off.
    cloud.remove(SHUT_OFF)
    cloud.define(ve.guest_domain_xml(SHUT_OFF, disks=[cloud.disk(SHUT_OFF)], **LIGHT))
    deadline = time.monotonic() + 20
    while [r['name'] for r in cloud.rows(
            "SELECT name FROM instances WHERE host = 'host1' ORDER BY name")] != sorted(
                [SHARED, SHUT_OFF]):
        assert time.monotonic() < deadline, cloud.rows('SELECT name, host FROM instances')
        time.sleep(0.2)
    pids = _host_pids(cloud.env, 'host1')
    qemu = [p for p in pids if b'qemu-system' in open('/proc/%d/cmdline' % p, 'rb').read()]
    assert len(qemu) == 1, pids
    after = guest.offset()

    # The host dies: its agent, its libvirtd and its QEMU, at once and without warning.
    cloud.services.kill('agent-host1')
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the reaper goes when its libvirtd does
    died = time.time()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.05)
    while cloud.rows("SELECT state FROM hosts WHERE name = 'host1'")[0]['state'] != 'down':
        assert time.time() - died < 4 * HEARTBEAT_TIMEOUT, 'host1 never marked down'
        time.sleep(0.1)
    # Evacuation before the fencing grace is refused by the fencing driver; wait it out.
    last = cloud.rows("SELECT last_heartbeat FROM hosts WHERE name = 'host1'")[0]
    time.sleep(max(0, last['last_heartbeat'] + FENCING_GRACE + 0.5 - time.time()))

    code, out, err = cloud.cli('server', 'evacuate', '--host', 'host1', '--target-host',
                               'host2', '-f', 'json')
    assert code == 0, out + err
    queued = {q.get('instance', q.get('Instance')): q for q in json.loads(out)}
    assert sorted(queued) == sorted([SHARED, SHUT_OFF]), out
    recs = {name: cloud.wait_ended(q['ID'] if 'ID' in q else q['id'])
            for name, q in queued.items()}
    for rec in recs.values():
        cloud.expect(rec, 'completed', 'host2')
        assert rec['migration_type'] == 'evacuate' and 'fenced' in (rec['reason'] or ''), rec
    assert cloud.locate(SHARED) == {'host2': 1}
    guest.assert_disks_verified(after, cloud.dom(SHARED, 'host2'))
    cloud.wait_reported(SHARED, 'host2', 'running')
    # Defined, not started: nothing was lost, and the record says so.
    cloud.assert_only_on(SHUT_OFF, 'host2', state=5)
    cloud.wait_reported(SHUT_OFF, 'host2', 'shutoff')
    assert 'lost' not in recs[SHUT_OFF]['reason'], recs[SHUT_OFF]
    _log('evacuated %.1f s after host1 died' % (time.time() - died))
