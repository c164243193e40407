"""Real libvirt + QEMU (TCG) hosts for functional tests.

Wraps ``tools/virt/vmmig-virt-env`` (see ``tools/virt/README.rst``): ``VirtEnvFixture`` starts N
libvirtd "hosts" on this machine and exposes their URIs; the module-level helpers build test guest
domains (the busybox guest of ``tools/virt/guest-init.sh``) and read what the guest prints on its
serial console.

The guest's console protocol (one line each)::

    GUEST-SUM0 <md5>                                 GUEST-TICK <n> up=<s>
    GUEST-MEM n=<tick> sum=<md5> slice=<k> dst=ok ok=yes
    GUEST-DISK-WRITTEN|OK <md5> dev=vdX mb=N         GUEST-DISK-BAD expected=.. got=.. dev=vdX
    GUEST-NET eth0 mac=.. ip=..                      GUEST-POWEROFF up=<s>
"""

import functools
import hashlib
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import fixtures

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / 'tools' / 'virt' / 'vmmig-virt-env'
DEFAULT_VIRT_DIR = '/tmp/vmmig-virt'
BRIDGE = os.environ.get('VMMIG_VIRT_BRIDGE', 'vmmigbr0')
#: address of QEMU migration streams / NBD servers inside the namespace
LOOPBACK = '127.0.0.1'
#: hostN's own address inside the namespace (qemu.conf migration_host, libvirtd TCP :16509)
HOST_NET = '198.51.100'


def virt_dir():
    return os.environ.get('VMMIG_VIRT_DIR', DEFAULT_VIRT_DIR)


def netns_name(base=None):
    """Network namespace of an environment (written by ``up``; vmmig-test by default)."""
    base = base or virt_dir()
    try:
        with open(os.path.join(base, 'netns')) as f:
            return f.read().strip()
    except FileNotFoundError:
        return os.environ.get('VMMIG_VIRT_NETNS', 'vmmig-test')


def host_uri(host, base=None):
    """URI of one host's libvirtd (a unix socket: works from any network namespace)."""
    return 'qemu+unix:///system?socket=%s/hosts/%s/run/libvirt-sock' % (base or virt_dir(), host)


def host_tcp_uri(host):
    """URI of a host's libvirtd as seen by the OTHER daemons (peer-to-peer migration)."""
    return 'qemu+tcp://%s/system' % host


def unavailable_reason():
    """None when this machine can run the environment, else why not (for skips)."""
    if os.geteuid() != 0:
        return 'needs root (network namespace, libvirtd)'
    if not SCRIPT.exists():
        return '%s missing' % SCRIPT
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return ('libvirt-python not importable (tools/virt/vmmig-virt-env install '
                '--python <this python>)')
    return None


def run_env(*args, base=None, timeout=900):
    """Run ``vmmig-virt-env ARGS``; raise RuntimeError with its output when it fails."""
    env = dict(os.environ, VMMIG_VIRT_DIR=base or virt_dir())
    proc = subprocess.run([str(SCRIPT)] + [str(a) for a in args], env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError('vmmig-virt-env %s failed (rc=%d):\n%s'
                           % (' '.join(map(str, args)), proc.returncode, proc.stdout))
    return proc.stdout


class VirtEnvFixture(fixtures.Fixture):
    """N libvirtd hosts (host1..hostN) in the ``vmmig-test`` network namespace.

    With ``VMMIG_VIRT_REUSE=1`` running hosts are reused (and left running); every domain found
    on them is destroyed and undefined at cleanup instead.
    """

    def __init__(self, n_hosts=2, base=None, install=True):
        super().__init__()
        self.n_hosts = n_hosts
        self.virt_dir = base or virt_dir()
        self.install = install
        self.reused = False

    def _setUp(self):
        reuse = os.environ.get('VMMIG_VIRT_REUSE') == '1'
        if reuse:
            try:
                run_env('status', self.n_hosts, base=self.virt_dir, timeout=120)
                self.reused = True
            except RuntimeError:
                pass
        if self.install:
            run_env('install', base=self.virt_dir)
        run_env('guest', base=self.virt_dir)
        if not self.reused:
            run_env('up', self.n_hosts, base=self.virt_dir)
        if reuse:
            self.addCleanup(self.cleanup_domains)
        else:
            self.addCleanup(run_env, 'down', base=self.virt_dir)
        self.netns = netns_name(self.virt_dir)
        self.hosts = ['host%d' % i for i in range(1, self.n_hosts + 1)]
        self.uris = {h: host_uri(h, self.virt_dir) for h in self.hosts}

    @property
    def shared_dir(self):
        """Directory every host sees as the instances' shared storage."""
        return os.path.join(self.virt_dir, 'shared')

    def local_dir(self, host):
        """A host's own (not shared) instances directory."""
        return os.path.join(self.virt_dir, 'hosts', host, 'local')

    @property
    def console_dir(self):
        return os.path.join(self.virt_dir, 'console')

    def console_path(self, name, fresh=True):
        """Console file for guest NAME (removed first when fresh: reused hosts keep old ones)."""
        path = os.path.join(self.console_dir, name + '.log')
        if fresh and os.path.exists(path):
            os.unlink(path)
        return path

    def connect(self, host):
        import libvirt
        conn = libvirt.open(self.uris[host])
        self.addCleanup(conn.close)
        return conn

    def nbd(self, name, size_mb, port, fmt='raw', fresh=True):
        """Serve volume NAME over NBD on 127.0.0.1:PORT in the namespace; returns a disk spec.

        fresh: start from a new empty volume even if one of that name exists (reused hosts).
        """
        if fresh:
            run_env('nbd-stop', name, base=self.virt_dir)
            for ext in ('raw', 'qcow2'):
                path = os.path.join(self.virt_dir, 'volumes', '%s.%s' % (name, ext))
                if os.path.exists(path):
                    os.unlink(path)
        run_env('nbd', name, size_mb, port, fmt, base=self.virt_dir)
        self.addCleanup(run_env, 'nbd-stop', name, base=self.virt_dir)
        return {'nbd': name, 'port': port}

    def nbd_stop(self, name):
        run_env('nbd-stop', name, base=self.virt_dir)

    def capture(self, bpf='ether proto 0x8035'):
        """Start a tcpdump on the test bridge (default filter: RARP); stop() returns frames."""
        cap = PacketCapture(bpf, netns=self.netns)
        cap.start()
        self.addCleanup(cap.stop)
        return cap

    def cleanup_domains(self):
        import libvirt
        for uri in self.uris.values():
            try:
                conn = libvirt.open(uri)
            except libvirt.libvirtError:
                continue
            try:
                for dom in conn.listAllDomains():
                    try:
                        if dom.isActive():
                            dom.destroy()
                        dom.undefine()
                    except libvirt.libvirtError:
                        pass
            finally:
                conn.close()


class PacketCapture:
    """tcpdump on the test bridge inside the namespace (line-buffered text, link-level headers)."""

    def __init__(self, bpf='ether proto 0x8035', interface=BRIDGE, netns=None):
        self.cmd = ['ip', 'netns', 'exec', netns or netns_name(), 'tcpdump', '-i', interface,
                    '-l', '-n', '-e', '-U', bpf]
        self.proc = None
        self.lines = []
        self._out = None

    def start(self, timeout=10):
        self._out = tempfile.TemporaryFile(mode='w+')
        self._err = tempfile.TemporaryFile(mode='w+')
        self.proc = subprocess.Popen(self.cmd, stdout=self._out, stderr=self._err, text=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            self._err.seek(0)
            if 'listening on' in self._err.read():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self._err.seek(0)
        err = self._err.read()
        self.stop()
        raise RuntimeError('tcpdump did not start: %s' % err)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self._out.seek(0)
            self.lines = [line for line in self._out.read().splitlines() if line.strip()]
            self._out.close()
            self._err.close()
        return self.lines

    def rarp_from(self, mac):
        """Captured RARP frames whose Ethernet source is MAC (QEMU's announce-self)."""
        mac = mac.lower()
        return [line for line in self.lines
                if 'Reverse' in line and re.search(r'\b%s > ' % re.escape(mac), line.lower())]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------- domains

def mac_for(name):
    """A stable locally administered MAC for a guest name (52:54:00 is QEMU's prefix)."""
    h = hashlib.md5(name.encode()).hexdigest()
    return '52:54:00:%s:%s:%s' % (h[0:2], h[2:4], h[4:6])


@functools.lru_cache(maxsize=None)
def supports_o_direct(directory):
    """cache='none' needs O_DIRECT, which tmpfs refuses."""
    try:
        fd, path = tempfile.mkstemp(dir=directory)
        os.close(fd)
    except OSError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        os.close(fd)
        return True
    except OSError:
        return False
    finally:
        os.unlink(path)


def _disk_xml(spec, dev):
    if isinstance(spec, (str, os.PathLike)):
        spec = {'path': os.fspath(spec)}
    spec = dict(spec)
    if 'xml' in spec:
        return spec['xml']
    dev = spec.get('dev', dev)
    ro = '\n      <readonly/>' if spec.get('readonly') else ''
    if 'nbd' in spec:
        return """    <disk type='network' device='disk'>
      <driver name='qemu' type=%s/>
      <source protocol='nbd' name=%s>
        <host name=%s port='%d'/>
      </source>
      <target dev=%s bus='virtio'/>%s
    </disk>""" % (quoteattr(spec.get('format', 'raw')), quoteattr(spec['nbd']),
                  quoteattr(spec.get('host', LOOPBACK)), int(spec['port']), quoteattr(dev), ro)
    path = spec['path']
    fmt = spec.get('format') or ('qcow2' if path.endswith('.qcow2') else 'raw')
    cache = spec.get('cache') or (
        'none' if supports_o_direct(os.path.dirname(os.path.abspath(path))) else 'writeback')
    return """    <disk type='file' device='disk'>
      <driver name='qemu' type=%s cache=%s/>
      <source file=%s/>
      <target dev=%s bus='virtio'/>%s
    </disk>""" % (quoteattr(fmt), quoteattr(cache), quoteattr(path), quoteattr(dev), ro)


def default_kernel(base=None):
    """img/vmlinux (ELF, booted by QEMU through PVH: ~3.5 s faster under TCG than the
    bzImage) when the build could extract it, else img/vmlinuz."""
    img = os.path.join(base or virt_dir(), 'img')
    vmlinux = os.path.join(img, 'vmlinux')
    return vmlinux if os.path.exists(vmlinux) else os.path.join(img, 'vmlinuz')


def guest_domain_xml(name, memory_mib=256, disks=(), nic_mac=None, dirty_mb=16, tick=1,
                     console_path=None, ip=None, vcpus=1, virt_type='qemu', uuid=None,
                     kernel=None, initrd=None, extra_cmdline='', bridge=BRIDGE, base=None,
                     console_append=True):
    """Domain XML of a test guest (kernel + initrd boot, ACPI, serial console to a file).

    disks: each a path (qcow2 by extension, else raw), or a dict: ``{'path', 'format', 'cache',
    'dev', 'readonly'}``, ``{'nbd': export, 'port': N[, 'host']}`` or ``{'xml': '<disk...>'}``;
    targets vda, vdb, ... in order. nic_mac: None = no NIC, 'auto' = mac_for(name), or a MAC;
    the NIC is a virtio port on the test bridge. ip: the guest's eth0 address (192.0.2.2-254).
    console_path: default $VMMIG_VIRT_DIR/console/<name>.log; appended to (one file for the
    guest's whole life, across hosts and reboots: use console_offset() to look at new lines).
    """
    base = base or virt_dir()
    img = os.path.join(base, 'img')
    console_path = console_path or os.path.join(base, 'console', name + '.log')
    # no_timer_check: a loaded host can make the guest's IO-APIC timer check panic at boot.
    cmdline = ('console=ttyS0 quiet panic=-1 no_timer_check dirty_mb=%d tick=%s'
               % (dirty_mb, tick))
    if ip:
        cmdline += ' ip=%s' % ip
    if extra_cmdline:
        cmdline += ' ' + extra_cmdline
    devices = [_disk_xml(d, 'vd' + chr(ord('a') + i)) for i, d in enumerate(disks)]
    if nic_mac:
        mac = mac_for(name) if nic_mac == 'auto' else nic_mac
        devices.append("""    <interface type='bridge'>
      <mac address=%s/>
      <source bridge=%s/>
      <model type='virtio'/>
    </interface>""" % (quoteattr(mac), quoteattr(bridge)))
    return """<domain type=%(type)s>
  <name>%(name)s</name>%(uuid)s
  <memory unit='MiB'>%(mem)d</memory>
  <vcpu>%(vcpus)d</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>%(cmdline)s</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
%(devices)s
    <serial type='file'>
      <source path=%(console)s append=%(append)s/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='none'/>
  </devices>
</domain>
""" % {'type': quoteattr(virt_type), 'name': escape(name),
       'uuid': '\n  <uuid>%s</uuid>' % uuid if uuid else '',
       'mem': memory_mib, 'vcpus': vcpus,
       'kernel': escape(kernel or default_kernel(base)),
       'initrd': escape(initrd or os.path.join(img, 'initrd.gz')),
       'cmdline': escape(cmdline), 'devices': '\n'.join(devices),
       'console': quoteattr(console_path), 'append': "'on'" if console_append else "'off'"}


# ---------------------------------------------------------------------------------------- console

def console_offset(path):
    """Current size of a console file: pass as ``after=`` to look only at later lines."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def console_lines(path, after=0):
    try:
        with open(path, 'rb') as f:
            f.seek(after)
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode(errors='replace').replace('\r', '').splitlines()


def console_tail(path, n=25):
    return '\n'.join(console_lines(path)[-n:])


def wait_for_line(path, regex, timeout=60, after=0, dom=None):
    """Wait for a console line matching REGEX (after byte offset AFTER); returns the re.Match.

    With dom, fails early when the domain stops running. On failure the error shows the end
    of the console (a guest that died says why there).
    """
    rx = re.compile(regex)
    deadline = time.time() + timeout
    while True:
        for line in console_lines(path, after):
            m = rx.search(line)
            if m:
                return m
        if time.time() > deadline:
            why = 'not seen within %ss' % timeout
            break
        if dom is not None:
            try:
                active = dom.isActive()
            except Exception:
                active = False
            if not active:
                time.sleep(0.2)
                if any(rx.search(line) for line in console_lines(path, after)):
                    continue
                why = 'domain %s is no longer running' % dom.name()
                break
        time.sleep(0.1)
    raise TimeoutError('%r %s in %s; console ends with:\n%s'
                       % (regex, why, path, console_tail(path)))


_MEM = re.compile(r'GUEST-MEM n=(\d+) sum=([0-9a-f]{32})(?: slice=(\d+) dst=(\w+))? ok=(\w+)')
_DISK = re.compile(r'GUEST-DISK-(WRITTEN|OK|BAD|SKIP|ERROR)\b(.*)')


def last_mem_check(path, after=0):
    """The last GUEST-MEM line as a dict (n, sum, ok, line), or None."""
    found = None
    for line in console_lines(path, after):
        m = _MEM.search(line)
        if m:
            found = {'n': int(m.group(1)), 'sum': m.group(2), 'ok': m.group(5) == 'yes',
                     'slice': m.group(3) and int(m.group(3)), 'dst': m.group(4), 'line': line}
    return found


def last_tick(path, after=0):
    """Number of the last GUEST-TICK line, or None."""
    n = None
    for line in console_lines(path, after):
        m = re.search(r'GUEST-TICK (\d+)', line)
        if m:
            n = int(m.group(1))
    return n


def disk_status(path, dev='vda', after=0):
    """The last disk verdict of the guest for DEV: dict(state='written'|'ok'|'bad'|'skip'|'error',
    md5, expected, line), or None when the guest has not reported on DEV yet."""
    found = None
    for line in console_lines(path, after):
        m = _DISK.search(line)
        if not m or not re.search(r'\bdev=%s\b' % re.escape(dev), line):
            continue
        rest = m.group(2)
        state = m.group(1).lower()
        if state == 'bad':
            exp = re.search(r'expected=([0-9a-f]+)', rest)
            got = re.search(r'got=([0-9a-f]+)', rest)
            found = {'state': state, 'md5': got and got.group(1),
                     'expected': exp and exp.group(1), 'line': line}
        else:
            md5 = re.match(r'\s*([0-9a-f]{32})', rest)
            found = {'state': state, 'md5': md5 and md5.group(1),
                     'expected': md5 and md5.group(1), 'line': line}
    return found


def wait_for_state(dom, state, timeout=30):
    """Wait until dom.state()[0] == STATE (a libvirt.VIR_DOMAIN_* constant)."""
    deadline = time.time() + timeout
    while True:
        cur = dom.state()[0]
        if cur == state:
            return
        if time.time() > deadline:
            raise TimeoutError('domain %s in state %s, not %s after %ss'
                               % (dom.name(), cur, state, timeout))
        time.sleep(0.1)
