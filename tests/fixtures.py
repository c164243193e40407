"""Fixtures shared by the unit and functional tests: config, databases, services."""

import glob
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import fixtures
from oslo_config import fixture as config_fixture
import pytest
import sqlalchemy as sa

from vmmig import conf
from vmmig import config
from vmmig.db import api as db
from vmmig import embedded
from vmmig import rpc

CONF = conf.CONF

REQUIRE_SERVICES = os.environ.get('VMMIG_REQUIRE_SERVICES') == '1'
RABBIT_URL = os.environ.get('VMMIG_TEST_RABBIT', 'rabbit://guest:guest@127.0.0.1:5672/')
SERVER_URLS = {
    'postgresql': os.environ.get('VMMIG_TEST_POSTGRESQL',
                                 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres'),
    'mysql': os.environ.get('VMMIG_TEST_MYSQL', 'mysql+pymysql://root@127.0.0.1:3306/mysql'),
}
BACKENDS = ['sqlite', 'postgresql', 'mysql']


def service_missing(what, error):
    """Skip, or fail under VMMIG_REQUIRE_SERVICES=1 (CI), when a service is not there."""
    message = '%s is not reachable: %s' % (what, error)
    if REQUIRE_SERVICES:
        pytest.fail(message + ' (VMMIG_REQUIRE_SERVICES=1)')
    pytest.skip(message)


class ConfFixture(fixtures.Fixture):
    """vmmig options for one test: a temporary state path, fast timers, in-process RPC."""

    def __init__(self, database_url=None, **overrides):
        self.database_url = database_url
        self.overrides = overrides

    def _setUp(self):
        config.set_defaults()
        CONF([], project='vmmig', default_config_files=[])
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf.config(state_path=self.state_path, transport_url='fake://', embedded=True)
        self.conf.config(connection=self.database_url or 'sqlite:///%s/vmmig.sqlite'
                         % self.state_path, group='database')
        self.conf.config(heartbeat_interval=0.2, group='agent')
        self.conf.config(dispatch_interval=0.05, heartbeat_timeout=2.0, rpc_timeout=10,
                         progress_interval=0.0, group='conductor')
        self.conf.config(monitor_interval=0.05, group='live_migration')
        self.conf.config(driver=['noop'], group='oslo_messaging_notifications')
        for key, value in self.overrides.items():
            group, _sep, name = key.rpartition('.')
            self.conf.config(**{name: value}, group=group or None)
        self.addCleanup(db.dispose)
        self.addCleanup(rpc.cleanup)
        self.addCleanup(_forget_where_set, 'transport_url')


def _forget_where_set(name, group=None):
    """oslo.config keeps an option's location 'set_override' once its override is
    cleared, so vmmig.config.is_embedded() would go on seeing a transport_url set by
    the tests that follow (the CLI's embedded tests): forget it."""
    CONF._get_opt_info(name, group).pop('location', None)


class DatabaseFixture(fixtures.Fixture):
    """A fresh, empty database on ``backend`` (the services sync the schema); dropped after."""

    def __init__(self, backend):
        self.backend = backend
        self.url = None

    def _setUp(self):
        if self.backend == 'sqlite':
            self.url = 'sqlite:///%s/vmmig.sqlite' % self.useFixture(fixtures.TempDir()).path
            return
        server = SERVER_URLS[self.backend]
        name = 'vmmig_test_%s' % uuid.uuid4().hex[:12]
        try:
            admin = sa.create_engine(server, isolation_level='AUTOCOMMIT')
            with admin.connect() as conn:
                conn.exec_driver_sql('CREATE DATABASE %s' % name)
        except Exception as e:  # noqa: any driver error means the server is not usable
            service_missing(self.backend, e)
        self.url = str(sa.engine.make_url(server).set(database=name))
        self.addCleanup(self._drop, admin, name)

    @staticmethod
    def _drop(admin, name):
        db.dispose()
        with admin.connect() as conn:
            if admin.dialect.name == 'postgresql':
                conn.exec_driver_sql('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
            else:
                conn.exec_driver_sql('DROP DATABASE IF EXISTS %s' % name)
        admin.dispose()


def sim_host_views(state_path):
    """{host: {instance name: spec}} from every simulated host's state file."""
    views = {}
    for path in glob.glob(os.path.join(state_path, 'sim', 'hosts', '*.json')):
        with open(path) as f:
            data = json.load(f)
        views[data['host']] = data['instances']
    return views


def sim_places(state_path, name):
    """Hosts defining ``name``, an incoming copy marked '+incoming' (a VM on two hosts shows)."""
    return sorted(host + ('+incoming' if inst.get('incoming') else '')
                  for host, insts in sim_host_views(state_path).items()
                  for iname, inst in insts.items() if iname == name)


def write_cluster(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


class EmbeddedFixture(fixtures.Fixture):
    """Conductor and simulated agents in this process, on the in-process transport."""

    def __init__(self, cluster=None, backend='sqlite', agent_groups=None, **overrides):
        self.cluster = cluster
        self.backend = backend
        self.agent_groups = agent_groups
        self.overrides = overrides

    def _setUp(self):
        database = self.useFixture(DatabaseFixture(self.backend))
        self.conf = self.useFixture(ConfFixture(database.url, **self.overrides))
        if self.cluster is not None:
            path = write_cluster(os.path.join(self.conf.state_path, 'cluster.json'),
                                 self.cluster)
            self.conf.conf.config(cluster_file=path, group='sim')
        self.services = embedded.EmbeddedServices(agent_groups=self.agent_groups)
        self.services.start()
        self.addCleanup(self.services.stop)


def rabbit_available():
    import kombu
    try:
        with kombu.Connection(RABBIT_URL.replace('rabbit://', 'amqp://'),
                              connect_timeout=3) as conn:
            conn.connect()
    except Exception as e:  # noqa: any failure means no usable broker
        service_missing('RabbitMQ at %s' % RABBIT_URL, e)


class ServiceProcesses(fixtures.Fixture):
    """vmmig-conductor and vmmig-agent as separate processes over the real RabbitMQ."""

    def __init__(self, hosts, database_url, cluster=None, conductors=1, extra_conf=None,
                 agent_conf=None, agent_groups=None, own_credentials=False):
        """``extra_conf``: {section: {key: value}} for every service; ``agent_conf``:
        {host: {section: {key: value}}} for one agent only (its own [libvirt] uri, say);
        ``agent_groups``: {name: [host, ...]} served by one vmmig.cmd.agents_bulk process
        each (simulated hosts), the other hosts by a vmmig-agent of their own;
        ``own_credentials``: a RabbitMQ vhost of this fixture's own, and each service
        a user of its own there (tools/rabbitmq-users.sh): the CLI the api user's."""
        self.hosts = hosts
        self.agent_groups = agent_groups or {}
        self.database_url = database_url
        self.cluster = cluster
        self.n_conductors = conductors
        self.extra_conf = extra_conf or {}
        self.agent_conf = agent_conf or {}
        self.own_credentials = own_credentials
        self.urls = {}
        self.procs = {}

    def _setUp(self):
        rabbit_available()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.exchange = 'vmmig-test-%s' % uuid.uuid4().hex[:8]
        # Queue names do not include the exchange: topics of their own keep tests that
        # share the broker (other runs, other engineers) from consuming each other's calls.
        self.admin_url = RABBIT_URL
        if self.own_credentials:
            self._make_users()
        sections = {
            'DEFAULT': {'transport_url': self.urls.get('api', RABBIT_URL),
                        'control_exchange': self.exchange,
                        'state_path': self.dir, 'embedded': 'false', 'debug': 'false'},
            'database': {'connection': self.database_url},
            'agent': {'heartbeat_interval': '0.5', 'topic': self.exchange + '-agent'},
            'conductor': {'heartbeat_timeout': '3', 'dispatch_interval': '0.1',
                          'rpc_timeout': '20', 'progress_interval': '0.2',
                          'topic': self.exchange + '-conductor',
                          'report_topic': self.exchange + '-conductor-report'},
            'live_migration': {'monitor_interval': '0.1'},
            'oslo_messaging_notifications': {'driver': 'messagingv2'},
        }
        if self.cluster is not None:
            sections['sim'] = {'cluster_file': write_cluster(
                os.path.join(self.dir, 'cluster.json'), self.cluster)}
        for section, values in self.extra_conf.items():
            sections.setdefault(section, {}).update(values)
        self.config_file = os.path.join(self.dir, 'vmmig.conf')
        with open(self.config_file, 'w') as f:
            for section, values in sections.items():
                f.write('[%s]\n' % section)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        self.run_module('vmmig.cmd.manage', ['db', 'sync'])
        self.addCleanup(self.remove_broker_objects)
        self.addCleanup(self.stop_all)
        for i in range(self.n_conductors):
            self.start_conductor('conductor-%d' % i)
        grouped = {h for hosts in self.agent_groups.values() for h in hosts}
        for name, hosts in sorted(self.agent_groups.items()):
            self.start_agent_group(name, hosts)
        for host in self.hosts:
            if host not in grouped:
                self.start_agent(host)
        self.wait_for_hosts(self.hosts)

    def rabbitmq_users(self, *args):
        """tools/rabbitmq-users.sh for this fixture's vhost, users and topics."""
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              'tools', 'rabbitmq-users.sh')
        return subprocess.run([script, '-v', self.exchange, '-u', self.exchange + '-',
                               '-e', self.exchange, '-t', self.exchange,
                               '-f', self.passwords] + list(args),
                              check=True, capture_output=True, text=True, timeout=120)

    def _make_users(self):
        import urllib.parse
        self.passwords = os.path.join(self.dir, 'rabbitmq-passwords')
        servers = [h for h in self.hosts
                   if not any(h in hosts for hosts in self.agent_groups.values())]
        servers += sorted(self.agent_groups)
        try:
            self.rabbitmq_users('setup')
            for name in servers:
                self.rabbitmq_users('add-agent', name)
            # The test's own hands (the notification listener, the tidying): all of it.
            subprocess.run(['rabbitmqctl', '-q', 'set_permissions', '-p', self.exchange,
                            urllib.parse.urlsplit(RABBIT_URL).username, '.*', '.*', '.*'],
                           check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.CalledProcessError) as e:
            service_missing('rabbitmqctl (RabbitMQ users of the services, run as root)',
                            getattr(e, 'stderr', None) or e)
        finally:
            self.addCleanup(self.rabbitmq_users, 'remove')
        with open(self.passwords) as f:
            passwords = dict(line.split() for line in f if line.strip())
        broker = urllib.parse.urlsplit(RABBIT_URL)
        where = '%s:%s' % (broker.hostname, broker.port or 5672)

        def url(user):
            return 'rabbit://%s:%s@%s/%s' % (user, passwords[user], where, self.exchange)
        self.admin_url = 'rabbit://%s@%s/%s' % (broker.netloc.rsplit('@', 1)[0], where,
                                                self.exchange)
        self.urls = {'conductor': url(self.exchange + '-conductor'),
                     'api': url(self.exchange + '-api')}
        for name in servers:
            self.urls['agent-' + name] = url('%s-agent-%s' % (self.exchange, name))

    def _argv(self, module, args):
        # sys.exit(main()), as the console scripts do: the CLI's exit code is its answer.
        # PR_SET_PDEATHSIG: a test run that is killed takes its services with it, instead
        # of leaving them to load the machine (and the broker) for the next runs.
        return [sys.executable, '-c', 'import ctypes, signal, sys; '
                'ctypes.CDLL(None).prctl(1, signal.SIGTERM); from %s import main; '
                'sys.exit(main(sys.argv[1:]))' % module,
                '--config-file', self.config_file] + list(args)

    def run_module(self, module, args):
        return subprocess.run(self._argv(module, args), check=True, capture_output=True,
                              text=True, timeout=120)

    def _spawn(self, name, module, host, sections=None, args=(), url=None):
        # One small file each, read after the common file, so its sections override the
        # common ones. vmmig-agent and vmmig-conductor are told their host as the README
        # says, with --host; the process of several agents names itself in the file.
        host_file = os.path.join(self.dir, name + '.conf')
        with open(host_file, 'w') as f:
            f.write('[DEFAULT]\n')
            if '--host' not in args:
                f.write('host = %s\n' % host)
            if url:
                f.write('transport_url = %s\n' % url)
            for section, values in (sections or {}).items():
                f.write('[%s]\n' % section)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        with open(os.path.join(self.dir, name + '.log'), 'ab') as log:
            proc = subprocess.Popen(self._argv(module, ['--config-file', host_file]
                                               + list(args)),
                                    stdout=log, stderr=log)
        self.procs[name] = proc
        return proc

    def start_conductor(self, name):
        return self._spawn(name, 'vmmig.cmd.conductor', name, args=['--host', name],
                           url=self.urls.get('conductor'))

    def start_agent(self, host):
        return self._spawn('agent-' + host, 'vmmig.cmd.agent', host,
                           self.agent_conf.get(host), args=['--host', host],
                           url=self.urls.get('agent-' + host))

    def start_agent_group(self, name, hosts):
        return self._spawn(name, 'vmmig.cmd.agents_bulk', name,
                           args=['--hosts', ','.join(hosts), '--name', name],
                           url=self.urls.get('agent-' + name))

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop_all(self):
        procs, self.procs = list(self.procs.values()), {}
        # All at once: an idle oslo.messaging server takes up to 5 s to notice its stop.
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def topics(self):
        return (self.exchange + '-conductor', self.exchange + '-conductor-report',
                self.exchange + '-agent')

    def remove_broker_objects(self, queues=None):
        """Delete this fixture's queues and exchanges: the broker outlives the test."""
        import kombu
        if queues is None:
            servers = (['conductor-%d' % i for i in range(self.n_conductors)]
                       + list(self.hosts) + list(self.agent_groups))
            queues = list(self.topics) + ['%s.%s' % (t, s) for t in self.topics
                                          for s in servers]
            exchanges = [self.exchange] + ['%s_fanout' % t for t in self.topics]
        else:
            exchanges = []
        try:
            with kombu.Connection(self.admin_url.replace('rabbit://', 'amqp://'),
                                  connect_timeout=3) as conn:
                channel = conn.channel()
                for queue in queues:
                    channel.queue_delete(queue)
                for exchange in exchanges:
                    channel.exchange_delete(exchange)
        except Exception:  # noqa: tidying the broker must not fail a test
            pass

    def log(self, name):
        with open(os.path.join(self.dir, name + '.log'), errors='replace') as f:
            return f.read()

    def wait_for_hosts(self, hosts, timeout=60):
        engine = sa.create_engine(self.database_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    up = {r[0] for r in conn.exec_driver_sql(
                        "SELECT name FROM hosts WHERE state = 'up'")}
                if set(hosts) <= up:
                    return
                exited = [n for n, p in self.procs.items() if p.poll() is not None]
                if exited:
                    break
                time.sleep(0.2)
        finally:
            engine.dispose()
        logs = '\n'.join('--- %s\n%s' % (n, self.log(n)[-2000:]) for n in self.procs)
        raise AssertionError('hosts %s did not come up in %d s (or a service exited)\n%s'
                             % (hosts, timeout, logs))

    def cli(self, *args, check=True):
        """Run the vmmig CLI against these services; returns the CompletedProcess."""
        return subprocess.run(self._argv('vmmig.cmd.cli', args), capture_output=True,
                              text=True, timeout=300, check=check)


class Notifications(fixtures.Fixture):
    """A real notification listener on the services' exchange (topic 'notifications').

    The listener's queue is named after the exchange (a pool of its own), so tests
    sharing the broker do not take each other's notifications.
    """

    def __init__(self, services, topic='notifications'):
        self.services = services
        self.topic = topic
        self.events = []

    def _setUp(self):
        import threading

        from oslo_config import cfg
        import oslo_messaging as messaging

        self._cond = threading.Condition()
        # A configuration object of its own: the global CONF belongs to the unit tests.
        conf = cfg.ConfigOpts()
        conf([], project='vmmig-test', default_config_files=[])
        transport = messaging.get_notification_transport(conf, url=self.services.admin_url)
        self.addCleanup(transport.cleanup)
        self.pool = self.services.exchange + '-listener'
        target = messaging.Target(topic=self.topic, exchange=self.services.exchange)
        self.listener = messaging.get_notification_listener(
            transport, [target], [self], executor='threading', pool=self.pool)
        self.listener.start()
        self.addCleanup(self._stop)

    def _stop(self):
        self.listener.stop()
        self.listener.wait()
        self.services.remove_broker_objects(queues=[self.pool])

    def _record(self, priority, publisher_id, event_type, payload):
        with self._cond:
            self.events.append({'priority': priority, 'publisher_id': publisher_id,
                                'event_type': event_type, 'payload': payload})
            self._cond.notify_all()

    # The listener's endpoint: one method per priority it wants.
    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('info', publisher_id, event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('error', publisher_id, event_type, payload)

    def of(self, migration_id):
        with self._cond:
            return [e['event_type'] for e in self.events
                    if (e['payload'] or {}).get('id') == migration_id]

    def wait_for(self, migration_id, event_type, timeout=30):
        """The event types seen for the migration once ``event_type`` is among them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while event_type not in self.of(migration_id):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('no %s for migration %s in %d s; seen: %s' % (
                        event_type, migration_id, timeout, self.of(migration_id)))
                self._cond.wait(left)
            return self.of(migration_id)


def endpoint_function(func):
    """An RPC endpoint's own function under its decorators, oslo.messaging's
    expected_exceptions included (whose wrapper does not say what it wraps)."""
    func = inspect.unwrap(func)
    while func.__name__ == 'inner' and func.__closure__:
        inner = [c.cell_contents for c in func.__closure__
                 if inspect.isfunction(c.cell_contents)]
        if len(inner) != 1:
            break
        func = inspect.unwrap(inner[0])
    return func


def free_port():
    """A TCP port nobody listens on now (bound to port 0, then released)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ApiProcess(fixtures.Fixture):
    """vmmig-api as a process of ``services`` (ServiceProcesses), on a free port.

    ``sections``: its own options ({section: {key: value}}), [api] auth_strategy and
    [keystone_authtoken] among them.
    """

    def __init__(self, services, sections=None, name='api'):
        self.services = services
        self.sections = sections or {}
        self.name = name

    def _setUp(self):
        import requests
        self.port = free_port()
        sections = {k: dict(v) for k, v in self.sections.items()}
        sections.setdefault('api', {}).update(port=self.port, host='127.0.0.1')
        self.url = 'http://127.0.0.1:%d' % self.port
        proc = self.services._spawn(self.name, 'vmmig.cmd.api', self.name, sections)
        self.addCleanup(self._stop, proc)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + '/', timeout=2)
                return
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError('vmmig-api did not start:\n%s'
                                         % self.services.log(self.name)[-3000:])
                time.sleep(0.2)

    def _stop(self, proc):
        self.services.procs.pop(self.name, None)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
