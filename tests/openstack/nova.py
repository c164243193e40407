"""Real Nova for a test session: placement-api and nova-api behind gunicorn, nova-conductor,
nova-scheduler and nova-compute services with Nova's fake virt drivers, over this machine's
RabbitMQ (a vhost of their own) and MariaDB (databases with a random suffix).

tools/openstack/setup-nova.sh installs them; tools/openstack/README.rst says how to start
them by hand (``python -m tests.openstack.nova``).
"""

import argparse
import concurrent.futures
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
import novaclient
from novaclient import api_versions
from novaclient import client as nova_client
import pymysql
import requests

from tests.openstack import standins

VENV = os.path.join(os.environ.get('VMMIG_OPENSTACK_DIR', '/opt/vmmig-openstack'), 'nova')
RABBIT = os.environ.get('VMMIG_NOVA_RABBIT', 'guest:guest@127.0.0.1:5672')
MYSQL = dict(host='127.0.0.1', port=3306, user='root', password='')

# Nova's fake virt drivers. FAKE finishes a live migration at once: it is Nova's
# fake.FakeDriver with a node identity kept in the compute's state_path, as a real
# single-node driver does, so a killed compute can start again. FAKE_LIVE keeps a live
# migration running until it is aborted or forced to complete (Nova's driver ends it by
# itself after about 5 s: see tools/openstack/README.rst); its node gets a new UUID in
# every process, so a FAKE_LIVE host cannot be restarted once killed.
FAKE = 'fake.FakeDriverWithoutFakeNodes'
FAKE_LIVE = 'fake.FakeLiveMigrateDriver'
RANDOM_NODE_UUID = ('fake.FakeDriver', 'fake.FakeLiveMigrateDriver')

FLAVORS = {'m1.tiny': dict(ram=128, vcpus=1, disk=1),
           'm1.small': dict(ram=256, vcpus=1, disk=2)}

# What a user without Keystone sends: the headers keystonemiddleware would have set.
ADMIN_HEADERS = {'X-User-Id': 'vmmig-admin', 'X-Project-Id': 'vmmig',
                 'X-Roles': 'admin,member,reader', 'X-Auth-Token': 'admin'}


class NovaError(Exception):
    """Nova did not come up or did not do what it was asked; the message has log tails."""


def venv_missing():
    """Why Nova cannot start here, or None."""
    for tool in ('nova-manage', 'nova-compute', 'gunicorn', 'placement-manage'):
        if not os.access(os.path.join(VENV, 'bin', tool), os.X_OK):
            return ('%s is not installed in %s: run tools/openstack/setup-nova.sh'
                    % (tool, VENV))
    if not os.path.exists(os.path.join(VENV, 'etc', 'nova', 'api-paste.ini')):
        return 'api-paste.ini is missing in %s/etc/nova: rerun setup-nova.sh' % VENV
    if not shutil.which('rabbitmqctl'):
        return 'rabbitmqctl is not installed (RabbitMQ vhosts for Nova)'
    return None


def _die_with_parent():
    """In the child: end when the process that started it ends, even killed without its
    clean-up (every service runs in its own session, so nothing else would end it)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port():
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _tail(path, lines=40):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError as e:
        return '(no log: %s)' % e


def _ini(sections):
    out = []
    for section, opts in sections.items():
        out.append('[%s]' % section)
        out.extend('%s = %s' % (k, v) for k, v in opts.items() if v is not None)
        out.append('')
    return '\n'.join(out)


class NovaCloud(object):
    """Real Nova services for one test session.

    ``computes`` names the compute hosts and the virt driver of each, e.g.
    ``{'nova-a': FAKE, 'nova-b': FAKE, 'nova-c': FAKE_LIVE}``; an int N gives N hosts
    ``compute-1``... with ``fake.FakeDriver``. ``keystone`` is the Keystone fixture
    (tests/openstack/keystone.py); without it nova-api and placement trust the
    identity headers a client sends (for bringing Nova up by hand only). ``conf``
    ({section: {option: value}}) is written over the generated nova.conf.

    Start and stop it from one thread: each service ends when the thread that started
    it does (PR_SET_PDEATHSIG).
    """

    def __init__(self, computes=3, keystone=None, workdir=None, prefix='vmmig', conf=None):
        if isinstance(computes, int):
            computes = {'compute-%d' % (i + 1): FAKE for i in range(computes)}
        self.drivers = dict(computes)
        # {section: {option: value}} written over the generated nova.conf.
        self.conf = conf or {}
        self.keystone = keystone
        self.suffix = uuid.uuid4().hex[:8]
        self.prefix = prefix
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix='vmmig-nova-')
        self.vhost = '%s-nova-%s' % (prefix, self.suffix)
        self.databases = {name: '%s_%s' % (name, self.suffix)
                          for name in ('nova_api', 'nova_cell0', 'nova', 'placement')}
        self.procs = {}
        self.log_paths = {}
        self.glance = self.neutron = None
        self.placement_url = self.api_url = None
        self.start_seconds = None
        self._started = set()
        self._cleanup = []

    # -- the public API -------------------------------------------------------------

    @property
    def compute_hosts(self):
        return sorted(self.drivers)

    @property
    def image_id(self):
        return self.glance.image_id

    def start(self):
        """Start every service and wait until all computes are up and mapped to cell1."""
        why = venv_missing()
        if why:
            raise NovaError(why)
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        print('nova start s %.1f (%d computes)' % (self.start_seconds, len(self.drivers)))
        return self

    def stop(self):
        # Every service at once; what has not ended within a few seconds is killed.
        procs = [(name, self.procs.pop(name)) for name in list(self.procs)]
        for name, proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for name, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        while self._cleanup:
            fn = self._cleanup.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup goes on with the rest
                print('nova stop: %s failed: %s' % (getattr(fn, '__name__', fn), e))
        if self._own_workdir and not os.environ.get('VMMIG_KEEP_NOVA_LOGS'):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self, user='vmmig-admin', version=None):
        """A python-novaclient Client over a keystoneauth1 session, recent microversion."""
        version = version or self.microversion()
        if self.keystone is not None:
            return nova_client.Client(version, session=self.keystone.session(user),
                                      endpoint_type='public')
        return nova_client.Client(version, session=self._header_session(user),
                                  endpoint_override=self.api_url + '/v2.1')

    def microversion(self):
        """The newest microversion both this python-novaclient and this Nova speak."""
        doc = requests.get(self.api_url + '/v2.1/', timeout=10).json()['version']
        server = api_versions.APIVersion(doc['version'])
        mine = api_versions.APIVersion(novaclient.API_MAX_VERSION.get_string())
        return min(server, mine).get_string()

    def boot(self, name, host=None, flavor='m1.tiny', timeout=60, client=None):
        """Boot a server without network ports (on ``host`` if given); wait until ACTIVE."""
        nova = client or self.client()
        kwargs = {'nics': 'none'}
        if host:
            kwargs['host'] = host
        server = nova.servers.create(name, self.image_id, nova.flavors.find(name=flavor),
                                     **kwargs)
        self.wait_server(server.id, 'ACTIVE', timeout=timeout, client=nova)
        return server.id

    def wait_server(self, server_id, status, timeout=60, client=None, task_state=None):
        """Wait until the server has ``status`` and no task; return the server."""
        nova = client or self.client()
        deadline = time.monotonic() + timeout
        while True:
            server = nova.servers.get(server_id)
            task = getattr(server, 'OS-EXT-STS:task_state', None)
            if server.status == status and task == task_state:
                return server
            if server.status == 'ERROR' and status != 'ERROR':
                raise NovaError('server %s went to ERROR: %s\n%s' % (
                    server_id, getattr(server, 'fault', None), self._tails()))
            if time.monotonic() > deadline:
                raise NovaError('server %s is %s (task %s), not %s after %ss\n%s' % (
                    server_id, server.status, task, status, timeout, self._tails()))
            time.sleep(0.5)

    def kill_compute(self, host):
        """Kill the host's nova-compute process (SIGKILL: no clean shutdown)."""
        self._kill('compute-' + host if not host.startswith('compute-') else host,
                   signal.SIGKILL)

    def start_compute(self, host, wait=True):
        """Start the host's nova-compute again (or for the first time)."""
        name = self._compute_proc(host)
        if host in self._started and self.drivers[host] in RANDOM_NODE_UUID:
            raise NovaError(
                '%s cannot start again: %s gives its node a new UUID in every process, and '
                'Nova refuses a second compute node record for the host; use a driver with '
                'a stable node identity (%s) for hosts a test restarts'
                % (host, self.drivers[host], FAKE))
        self._started.add(host)
        self._spawn(name, [self._bin('nova-compute'), '--config-file', self._nova_conf,
                           '--config-file', self._compute_conf(host)])
        if wait:
            self._wait_services({host}, 'nova-compute')

    def recover_compute(self, host, timeout=120):
        """Bring a killed, forced-down compute back: start it, let it clean up what was
        evacuated from it, then lift the forced-down flag and wait until it is up.

        Nova refuses to lift the flag while evacuations from the host are still
        ``done``; the restarted compute destroys those servers' remains and marks the
        migrations ``completed``.
        """
        self.start_compute(host, wait=False)
        nova = self.client()
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            pending = [m.id for m in nova.migrations.list(host=host,
                                                          migration_type='evacuation')
                       if m.source_compute == host and m.status in ('accepted', 'pre-migrating',
                                                                    'migrating', 'done')]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise NovaError('evacuations %s from %s not completed in %ss:\n%s' % (
                    pending, host, timeout, _tail(self.log_paths[self._compute_proc(host)])))
            time.sleep(0.5)
        self.force_down(host, False)
        # Up, not enabled: whoever disabled it (vmmig's maintenance of a fenced host)
        # enables it.
        self._wait_services({host}, 'nova-compute', enabled=False)

    def force_down(self, host, down=True):
        """Mark the host's nova-compute service forced down (or up again) in Nova."""
        nova = self.client()
        service = nova.services.list(host=host, binary='nova-compute')[0]
        nova.services.force_down(service.id, down)

    def logs(self, service):
        """The log of a service: placement-api, nova-api, nova-conductor,
        nova-scheduler, nova-manage, or a compute host's name."""
        name = self._compute_proc(service) if service in self.drivers else service
        path = self.log_paths.get(name)
        if path is None:
            raise KeyError('no service %r; there are %s' % (service, sorted(self.log_paths)))
        with open(path, errors='replace') as f:
            return f.read()

    # -- starting ------------------------------------------------------------------

    def _start(self):
        os.makedirs(os.path.join(self.workdir, 'lock'), exist_ok=True)
        self.glance = standins.Glance().start()
        self._cleanup.append(self.glance.stop)
        self.neutron = standins.Neutron().start()
        self._cleanup.append(self.neutron.stop)
        self._make_vhost()
        self._make_databases()
        self.placement_url = 'http://127.0.0.1:%d' % free_port()
        self.api_url = 'http://127.0.0.1:%d' % free_port()
        if self.keystone is not None:
            self._register_services()
        self._write_configs()

        # Placement's schema is made while nova-manage makes Nova's (each tool's start-up
        # alone takes seconds).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            placement = pool.submit(self._manage, 'placement-manage', 'db', 'sync',
                                    conf=self._placement_conf)
            self._nova_databases()
            placement.result()
        self._gunicorn('placement-api', 'placement.wsgi.api:application', self.placement_url,
                       {'OS_PLACEMENT_CONFIG_DIR': self._placement_dir})
        self._gunicorn('nova-api', 'nova.wsgi.osapi_compute:application', self.api_url,
                       {'OS_NOVA_CONFIG_DIR': self.workdir})
        for binary in ('nova-conductor', 'nova-scheduler'):
            self._spawn(binary, [self._bin(binary), '--config-file', self._nova_conf])
        # A compute reports its resources to Placement as it starts, and only again a
        # minute later: Placement answers first.
        self._wait_http('placement-api', self.placement_url + '/')
        for host in self.compute_hosts:
            self.start_compute(host, wait=False)
        self._wait_http('nova-api', self.api_url + '/')
        self._wait_services({'nova-conductor'}, 'nova-conductor', by_binary=True)
        self._wait_services({'nova-scheduler'}, 'nova-scheduler', by_binary=True)
        self._wait_services(set(self.compute_hosts), 'nova-compute')
        self._discover_hosts()
        self._make_flavors()

    def _nova_databases(self):
        conn = self._db_url
        self._manage('nova-manage', 'api_db', 'sync')
        self._manage('nova-manage', 'cell_v2', 'map_cell0',
                     '--database_connection', conn(self.databases['nova_cell0']))
        self._manage('nova-manage', 'cell_v2', 'create_cell', '--name', 'cell1',
                     '--database_connection', conn(self.databases['nova']),
                     '--transport-url', self._transport_url)
        self._manage('nova-manage', 'db', 'sync')

    def _make_vhost(self):
        self._rabbitmqctl('add_vhost', self.vhost)
        self._cleanup.append(lambda: self._rabbitmqctl('delete_vhost', self.vhost))
        user = RABBIT.split('@')[0].split(':')[0]
        self._rabbitmqctl('set_permissions', '-p', self.vhost, user, '.*', '.*', '.*')

    def _rabbitmqctl(self, *args):
        result = subprocess.run(['rabbitmqctl', '-q'] + list(args), capture_output=True,
                                text=True, timeout=120)
        if result.returncode:
            raise NovaError('rabbitmqctl %s failed: %s%s' % (
                ' '.join(args), result.stdout, result.stderr))

    def _make_databases(self):
        for name in self.databases.values():
            self._sql('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
            self._cleanup.append(lambda name=name: self._sql('DROP DATABASE IF EXISTS `%s`'
                                                             % name))

    def _sql(self, statement):
        conn = pymysql.connect(**MYSQL)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def _db_url(self, database):
        return 'mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8mb4' % (
            MYSQL['user'], MYSQL['password'], MYSQL['host'], MYSQL['port'], database)

    @property
    def _transport_url(self):
        return 'rabbit://%s/%s' % (RABBIT, self.vhost)

    @property
    def _nova_conf(self):
        return os.path.join(self.workdir, 'nova.conf')

    @property
    def _placement_dir(self):
        return os.path.join(self.workdir, 'placement')

    @property
    def _placement_conf(self):
        return os.path.join(self._placement_dir, 'placement.conf')

    def _compute_conf(self, host):
        return os.path.join(self.workdir, 'compute-%s.conf' % host)

    def _compute_proc(self, host):
        if host not in self.drivers:
            raise KeyError('no compute host %r; there are %s' % (host, self.compute_hosts))
        return 'compute-' + host

    def _bin(self, name):
        return os.path.join(VENV, 'bin', name)

    def _register_services(self):
        ks = self.keystone
        ks.register_service('nova', 'compute', self.api_url + '/v2.1')
        ks.register_service('placement', 'placement', self.placement_url)
        ks.register_service('glance', 'image', self.glance.url)
        ks.register_service('neutron', 'network', self.neutron.url)

    def _service_auth(self, user, endpoint):
        """The keystoneauth1 options with which a service calls another."""
        if self.keystone is None:
            return {'auth_type': 'admin_token', 'token': 'admin', 'endpoint': endpoint}
        return {'auth_type': 'password', 'auth_url': self.keystone.auth_url,
                'username': user, 'password': self.keystone.users[user],
                'user_domain_id': 'default', 'project_name': 'service',
                'project_domain_id': 'default', 'region_name': 'RegionOne'}

    def _authtoken(self, user):
        """keystonemiddleware's options: ``user`` is the service user checking tokens."""
        if self.keystone is None:
            return {}
        opts = self._service_auth(user, None)
        opts['www_authenticate_uri'] = self.keystone.auth_url
        opts['service_token_roles_required'] = 'true'
        return opts

    def _write_configs(self):
        os.makedirs(self._placement_dir, exist_ok=True)
        placement = {
            'DEFAULT': {'debug': 'true'},
            'api': {'auth_strategy': 'keystone' if self.keystone else 'noauth2'},
            'placement_database': {'connection': self._db_url(self.databases['placement'])},
            'keystone_authtoken': self._authtoken('placement'),
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
        }
        with open(self._placement_conf, 'w') as f:
            f.write(_ini(placement))

        nova = {
            'DEFAULT': {
                'debug': 'true',
                'transport_url': self._transport_url,
                'state_path': self.workdir,
                'report_interval': '2',
                'heal_instance_info_cache_interval': '-1',
                'instance_build_timeout': '0',
                'use_rootwrap_daemon': 'false',
            },
            'api': {'auth_strategy': 'keystone'},
            'wsgi': {'api_paste_config': os.path.join(self.workdir, 'api-paste.ini')},
            'api_database': {'connection': self._db_url(self.databases['nova_api'])},
            'database': {'connection': self._db_url(self.databases['nova'])},
            'oslo_concurrency': {'lock_path': os.path.join(self.workdir, 'lock')},
            'oslo_messaging_rabbit': {'heartbeat_timeout_threshold': '0'},
            'keystone_authtoken': self._authtoken('nova'),
            'placement': self._service_auth('placement', self.placement_url)
            if self.keystone is None else self._service_auth('nova', None),
            'neutron': dict(self._service_auth('neutron', self.neutron.url)
                            if self.keystone is None else self._service_auth('nova', None),
                            endpoint_override=self.neutron.url),
            'glance': {'api_servers': self.glance.url},
            'scheduler': {'discover_hosts_in_cells_interval': '-1', 'workers': '1'},
            'conductor': {'workers': '1'},
            'filter_scheduler': {'host_subset_size': '1'},
            'compute': {'resource_provider_association_refresh': '0'},
            'vnc': {'enabled': 'false'},
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
            'os_vif_ovs': {},
        }
        for section, opts in self.conf.items():
            nova.setdefault(section, {}).update(opts)
        with open(self._nova_conf, 'w') as f:
            f.write(_ini(nova))

        with open(os.path.join(VENV, 'etc', 'nova', 'api-paste.ini')) as f:
            paste = f.read()
        if self.keystone is None:
            # Without Keystone, nova-api trusts the identity headers the client sends.
            paste = paste.replace(' authtoken keystonecontext ', ' keystonecontext ')
        with open(os.path.join(self.workdir, 'api-paste.ini'), 'w') as f:
            f.write(paste)

        for host, driver in self.drivers.items():
            state = os.path.join(self.workdir, host)
            os.makedirs(os.path.join(state, 'instances'), exist_ok=True)
            with open(self._compute_conf(host), 'w') as f:
                f.write(_ini({'DEFAULT': {'host': host, 'compute_driver': driver,
                                          'state_path': state,
                                          'instances_path': os.path.join(state, 'instances')}}))

    def _log(self, name):
        path = os.path.join(self.workdir, name + '.log')
        self.log_paths[name] = path
        return path

    def _manage(self, tool, *args, conf=None):
        log = self._log(tool)
        began = time.monotonic()
        with open(log, 'a') as out:
            out.write('$ %s %s\n' % (tool, ' '.join(args)))
            out.flush()
            result = subprocess.run([self._bin(tool), '--config-file', conf or self._nova_conf]
                                    + list(args), stdout=out, stderr=subprocess.STDOUT,
                                    timeout=300)
            out.write('(exit %d after %.1f s)\n' % (result.returncode, time.monotonic() - began))
        if result.returncode:
            raise NovaError('%s %s exited %d:\n%s' % (tool, ' '.join(args), result.returncode,
                                                      _tail(log)))

    def _spawn(self, name, argv, env=None):
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            raise NovaError('%s is already running' % name)
        out = open(self._log(name), 'a')
        full_env = dict(os.environ, PATH=os.path.join(VENV, 'bin') + ':' + os.environ['PATH'],
                        **(env or {}))
        full_env.pop('PYTHONPATH', None)
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=full_env,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)
        out.close()

    def _gunicorn(self, name, app, url, env):
        # Nova's and Placement's WSGI entry points parse sys.argv as their own command
        # line; a shim module hands them an empty one instead of gunicorn's.
        module, attr = app.split(':')
        shim = 'wsgi_%s' % name.replace('-', '_')
        with open(os.path.join(self.workdir, shim + '.py'), 'w') as f:
            f.write('import sys\nsys.argv = sys.argv[:1]\nfrom %s import %s as application\n'
                    % (module, attr))
        # No control socket: gunicorn's default path is one per user, shared by every
        # gunicorn on the machine.
        self._spawn(name, [self._bin('gunicorn'), '--bind', url.split('//')[1],
                           '--workers', '1', '--threads', '8', '--timeout', '120',
                           '--no-control-socket', '--pythonpath', self.workdir,
                           '--name', name, shim + ':application'], env=env)

    def _kill(self, name, sig):
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)

    def _check_alive(self):
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise NovaError('%s exited with %s:\n%s' % (name, proc.returncode,
                                                            _tail(self.log_paths[name])))

    def _tails(self, lines=25):
        return '\n'.join('--- %s ---\n%s' % (name, _tail(path, lines))
                         for name, path in sorted(self.log_paths.items()))

    def _wait_http(self, name, url, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if requests.get(url, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise NovaError('%s did not answer on %s in %ss:\n%s' % (
                    name, url, timeout, _tail(self.log_paths[name])))
            time.sleep(0.3)

    def _wait_services(self, hosts, binary, by_binary=False, timeout=180, enabled=True):
        """Wait until the services report up (and ``enabled``) in Nova's os-services API."""
        nova = self.client()
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            up = {s.host for s in nova.services.list(binary=binary)
                  if s.state == 'up' and (s.status == 'enabled' or not enabled)}
            if by_binary and up or not by_binary and hosts <= up:
                return
            if time.monotonic() > deadline:
                names = hosts if not by_binary else {binary}
                raise NovaError('%s not up in %ss (up: %s):\n%s' % (
                    ', '.join(sorted(names)), timeout, sorted(up), '\n'.join(
                        '--- %s ---\n%s' % (n, _tail(self.log_paths.get(
                            self._compute_proc(n) if n in self.drivers else n, '')))
                        for n in sorted(names))))
            time.sleep(0.5)

    def _discover_hosts(self, timeout=120):
        """Map the computes to cell1 and wait until each has a hypervisor in Nova."""
        nova = self.client()
        deadline = time.monotonic() + timeout
        while True:
            self._manage('nova-manage', 'cell_v2', 'discover_hosts')
            seen = {h.hypervisor_hostname for h in nova.hypervisors.list()}
            if set(self.compute_hosts) <= seen:
                return
            if time.monotonic() > deadline:
                raise NovaError('hypervisors %s missing after %ss:\n%s' % (
                    sorted(set(self.compute_hosts) - seen), timeout, self._tails()))
            time.sleep(1)

    def _make_flavors(self):
        nova = self.client()
        for name, spec in FLAVORS.items():
            nova.flavors.create(name, spec['ram'], spec['vcpus'], spec['disk'])

    def _header_session(self, user):
        headers = dict(ADMIN_HEADERS, **{'X-User-Id': user})
        return ks_session.Session(auth=noauth.NoAuth(), additional_headers=headers)


def main():
    """Start Nova by hand (see tools/openstack/README.rst)."""
    parser = argparse.ArgumentParser(prog='python -m tests.openstack.nova',
                                     description=main.__doc__)
    parser.add_argument('computes', nargs='*', metavar='HOST=DRIVER',
                        help='compute hosts and their virt drivers, or a number N of hosts '
                        'compute-1..N with %s (default: 3)' % FAKE)
    parser.add_argument('--no-keystone', action='store_true',
                        help='no Keystone: nova-api and placement trust identity headers')
    args = parser.parse_args()
    # SIGTERM stops it as Ctrl-C does (with clean-up).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if len(args.computes) == 1 and args.computes[0].isdigit():
        computes = int(args.computes[0])
    elif all('=' in arg for arg in args.computes):
        computes = dict(arg.split('=', 1) for arg in args.computes) or 3
    else:
        parser.error('give HOST=DRIVER pairs or one number of hosts')
    keystone = None
    if not args.no_keystone:
        from tests.openstack import keystone as keystone_mod
        keystone = keystone_mod.Keystone()
        keystone.start()
    cloud = NovaCloud(computes=computes, keystone=keystone)
    try:
        cloud.start()
        print('nova-api %s/v2.1  placement %s  logs %s'
              % (cloud.api_url, cloud.placement_url, cloud.workdir))
        print('computes: %s' % ', '.join('%s=%s' % kv for kv in sorted(cloud.drivers.items())))
        if keystone is not None:
            print('as vmmig-admin:\n%s' % '\n'.join(
                'export %s=%s' % kv for kv in sorted(keystone.auth_env('vmmig-admin').items())))
        print('Ctrl-C or SIGTERM stops', flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
        if keystone is not None:
            keystone.stop()


if __name__ == '__main__':
    main()
