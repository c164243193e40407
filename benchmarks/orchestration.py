#!/usr/bin/env python3
"""How much the conductor costs: vmmig migrations against a bare oslo.messaging loop.

Runs N live migrations (shared storage) through a vmmig-conductor over RabbitMQ
and PostgreSQL, with 100 simulated agents (virtual clock, so a migration takes
no modelled time) in a few processes, then, on the same broker, a bare
oslo.messaging client/server pair making as many RPC round trips as the
migrations made. Prints::

    <N> migrations/s
    overhead p50 <ms> p99 <ms>     (request -> completed, per migration)
    ratio <R>                      (vmmig wall time / bare loop wall time)
    peak RSS conductor <MiB>, agents <MiB> (largest agent process)

and, for context, the bare loop again served the way the agents are (an echo
server in each of as many processes; each agent process listens once for all
its hosts, see vmmig.agent.router), with vmmig's ratio against that.

Migrations are driven closed-loop: ``--concurrency`` submitters each ask for
one migration (``migrate_server``) and wait for its end notification before
asking for the next, so the per-migration figures are not queueing time. The
bare loop uses the same number of concurrent callers.

Then, with the same services, what the request context and the policy checks
cost: ``--policy-pairs`` pairs of batches of ``--policy-batch`` migrations, the
first of each pair as vmmig runs (every RPC message carries the caller's
context, the conductor checks each endpoint's rule), the second with the checks
off and ``{}`` as every message's context (vmmig.policy.benchmark_checks, and a
serializer of this script's); on/off alternate in one run (ABAB...). Prints::

    policy ratio <R> (95% interval <lo>..<hi>, <n> pairs)

the mean of the pairs' wall-time ratios (on / off) with its t-interval, and
whether it meets the target, at most 1.05. The per-migration figures above
leave these migrations out.

    python benchmarks/orchestration.py [--migrations 300] [--agents 100] [--policy-pairs 10]
"""

import argparse
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

RABBIT_URL = os.environ.get('VMMIG_TEST_RABBIT', 'rabbit://guest:guest@127.0.0.1:5672/')
POSTGRESQL_URL = os.environ.get('VMMIG_TEST_POSTGRESQL',
                                'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres')
# RPC methods that are not part of a migration: the agents' background reports.
BACKGROUND = frozenset(('heartbeat', 'agent_started'))
MiB = 1024 * 1024


def _importable():
    """vmmig from the environment (installed, or PYTHONPATH), else from this tree."""
    try:
        import vmmig  # noqa: F401
    except ImportError:
        sys.path.insert(0, ROOT)


# -- Counting the RPC messages each process sends ------------------------------

def _install_rpc_counter(path):
    """Count every call and cast this process sends, by method; write them at exit."""
    import atexit

    from oslo_messaging.rpc import client

    counts = collections.Counter()
    lock = threading.Lock()

    def counted(kind, original):
        def send(self, ctxt, method, **kwargs):
            with lock:
                counts['%s:%s' % (kind, method)] += 1
            return original(self, ctxt, method, **kwargs)
        return send

    for cls in (client._BaseCallContext, client.RPCClient):
        for kind in ('call', 'cast'):
            if kind in vars(cls):
                setattr(cls, kind, counted(kind, vars(cls)[kind]))

    # And every SQL statement, by its kind and table: what the database is asked per
    # migration.
    import sqlalchemy as sa

    @sa.event.listens_for(sa.engine.Engine, 'before_cursor_execute')
    def statement(conn, cursor, sql, parameters, context, executemany):
        words = sql.split()
        table = next((w for w, before in zip(words[1:], words)
                      if before.upper() in ('FROM', 'INTO', 'UPDATE')), '?')
        with lock:
            counts['sql:%s %s' % (words[0].upper(), table.strip('"'))] += 1

    # Each transaction costs more than its statements: a checkout (with oslo.db's
    # pre-ping, one more round trip) and a commit.
    @sa.event.listens_for(sa.engine.Engine, 'commit')
    def commit(conn):
        with lock:
            counts['sql:COMMIT'] += 1

    def dump(to=path):
        with lock:
            snapshot = dict(counts)
        with open(to, 'w') as f:
            json.dump(snapshot, f)
    atexit.register(dump)
    # SIGUSR1: the counts so far, which the benchmark takes off (the start-up's); a
    # second one: the counts at the end of the measured migrations (the policy pairs
    # that follow are not in the per-migration figures).
    marks = iter(('.before', '.after'))
    signal.signal(signal.SIGUSR1, lambda *_a: dump(path + next(marks, '.after')))


# -- The policy checks and the request context, on and off ----------------------

_CHECKS_ON = [True]


def _install_policy_switch(path=None):
    """Let this process's policy checks and request contexts be turned off and on:
    with them off the conductor checks no rule (vmmig.policy.benchmark_checks) and
    every RPC message this process sends carries ``{}`` as its context (what a
    client before the request context sent). Call before any RPC client or server is
    made. Returns the switch; with ``path``, SIGUSR2 flips it too and the new state
    is written to ``path.checks``."""
    from vmmig import policy
    from vmmig import rpc

    class SwitchedSerializer(rpc.RequestContextSerializer):
        def serialize_context(self, ctxt):
            if _CHECKS_ON[0]:
                return super(SwitchedSerializer, self).serialize_context(ctxt)
            return {}

    rpc.SERIALIZER = SwitchedSerializer()

    def switch(on):
        _CHECKS_ON[0] = on
        policy.benchmark_checks(on)

    def flip(*_a):
        switch(not _CHECKS_ON[0])
        with open(path + '.checks.tmp', 'w') as f:
            f.write('on' if _CHECKS_ON[0] else 'off')
        os.rename(path + '.checks.tmp', path + '.checks')

    if path:
        signal.signal(signal.SIGUSR2, flip)
    return switch


def role_main(argv):
    """The benchmark's own child processes: a counted conductor, agents, bare server."""
    role, counts_path, rest = argv[0], argv[1], argv[2:]
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the benchmark
    _importable()
    if role == 'bare-server':
        return _bare_server(rest)
    _install_rpc_counter(counts_path)
    _install_policy_switch(counts_path)
    if role == 'conductor':
        from vmmig.cmd import conductor
        conductor.main(rest)
    elif role == 'agents':
        from vmmig.cmd import agents_bulk
        agents_bulk.main(rest)
    else:
        sys.exit('unknown role %s' % role)


# -- The bare loop ---------------------------------------------------------------

class _Echo(object):
    def step(self, ctxt, payload):
        return payload


def _bare_transport(parse=False):
    # The global CONF: oslo.messaging registers its tracing options only there.
    from oslo_config import cfg
    import oslo_messaging as messaging
    if parse:
        cfg.CONF([], project='vmmig-bench', default_config_files=[])
    return messaging, messaging.get_rpc_transport(cfg.CONF, url=RABBIT_URL)


def ready_until_sigterm():
    """Tell the benchmark this process is serving, then serve until it says stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    print('ready', flush=True)
    while not stop.wait(1.0):
        pass


def _bare_server(argv):
    exchange, topic, names = argv
    messaging, transport = _bare_transport(parse=True)
    servers = [messaging.get_rpc_server(
        transport, messaging.Target(topic=topic, server=name, exchange=exchange), [_Echo()])
        for name in names.split(',')]
    for server in servers:
        server.start()
    ready_until_sigterm()
    # Side by side: one by one, each idle server would take seconds to notice its stop.
    _run_in_threads_each([lambda srv=srv: (srv.stop(), srv.wait()) for srv in servers])
    transport.cleanup()


def bare_loop(calls, concurrency, payload, servers=1, processes=1):
    """Wall time of ``calls`` RPC round trips from ``concurrency`` threads to echo servers:
    ``servers`` of them (round robin) in ``processes`` server processes."""
    exchange = 'vmmig-bench-bare-%s' % uuid.uuid4().hex[:8]
    topic = exchange + '-echo'
    names = ['bare%03d' % i for i in range(servers)]
    procs = [subprocess.Popen([sys.executable, __file__, '--role', 'bare-server', '-',
                               exchange, topic, ','.join(names[i::processes])],
                              stdout=subprocess.PIPE, text=True) for i in range(processes)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == 'ready'
        messaging, transport = _bare_transport()
        client = messaging.get_rpc_client(
            transport, messaging.Target(topic=topic, exchange=exchange), timeout=60)
        for name in names:  # queues bound, connections made
            client.prepare(server=name).call({}, 'step', payload=payload)
        left = [calls]
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                    name = names[left[0] % servers]
                client.prepare(server=name).call({}, 'step', payload=payload)

        wall = _run_in_threads(worker, concurrency)
        transport.cleanup()
        return wall
    finally:
        stop_processes(procs)
        _remove_broker_objects([topic] + ['%s.%s' % (topic, n) for n in names],
                               [exchange, topic + '_fanout'])


# -- The cluster, the configuration, the database -------------------------------

def make_cluster(n_hosts, n_instances):
    hosts = {'b%03d' % i: {'vcpus': 256, 'memory_mb': 1024 * 1024, 'disk_gb': 100000,
                           'shared_storage': 'nfs-bench', 'cluster': 'bench'}
             for i in range(n_hosts)}
    names = sorted(hosts)
    instances = {'vm%04d' % i: {'host': names[i % n_hosts], 'vcpus': 1, 'memory_mb': 1024,
                                'disks': [{'name': 'vda', 'size_gb': 10,
                                           'location': 'shared'}],
                                'workload': {'dirty_rate_mbps': 10, 'wws_mb': 64}}
                 for i in range(n_instances)}
    return {'hosts': hosts, 'instances': instances}


def write_config(path, sections):
    with open(path, 'w') as f:
        for section, values in sections.items():
            f.write('[%s]\n' % section)
            for key, value in values.items():
                f.write('%s = %s\n' % (key, value))


def create_database(server_url):
    import sqlalchemy as sa
    name = 'vmmig_bench_%s' % uuid.uuid4().hex[:10]
    admin = sa.create_engine(server_url, isolation_level='AUTOCOMMIT')
    with admin.connect() as conn:
        conn.exec_driver_sql('CREATE DATABASE %s' % name)
    return admin, name, str(sa.engine.make_url(server_url).set(database=name))


def drop_database(admin, name):
    with admin.connect() as conn:
        conn.exec_driver_sql('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
    admin.dispose()


def stop_processes(procs):
    """SIGTERM to all first, so they stop side by side; SIGKILL to one still there
    after a minute."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_in_threads(target, count):
    """Run ``target`` in ``count`` threads at once; return the wall time until all end."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def _run_in_threads_each(functions):
    """Run each function in a thread of its own; return once all have ended."""
    threads = [threading.Thread(target=f) for f in functions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _remove_broker_objects(queues, exchanges):
    import kombu
    try:
        with kombu.Connection(RABBIT_URL.replace('rabbit://', 'amqp://'),
                              connect_timeout=3) as conn:
            channel = conn.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for exchange in exchanges:
                channel.exchange_delete(exchange)
    except Exception as e:  # noqa: tidying up must not hide the figures
        print('could not remove broker objects: %s' % e, file=sys.stderr)


def peak_rss(pid):
    """VmHWM: the largest resident set the process ever had."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    """User + system CPU time the process used so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def machine_cpu_seconds():
    """Busy CPU time of the whole machine (every process: broker, database, others)."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / float(os.sysconf('SC_CLK_TCK'))


def service_cpu_seconds():
    """CPU time so far of the broker and of this driver process."""
    import psutil
    out = collections.Counter()
    for proc in psutil.process_iter(['name', 'cpu_times']):
        name = proc.info['name'] or ''
        times = proc.info['cpu_times']
        if times is None:
            continue
        # (The database's backends come and go with connections: not counted here.)
        kind = ('broker' if name.startswith('beam') else
                'driver' if proc.pid == os.getpid() else None)
        if kind:
            out[kind] += times.user + times.system
    return out


def percentile(values, p):
    values = sorted(values)
    index = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[index]


# -- The vmmig run -----------------------------------------------------------------

class Services(object):
    def __init__(self, args, workdir, database_url):
        self.args = args
        self.dir = workdir
        self.exchange = 'vmmig-bench-%s' % uuid.uuid4().hex[:8]
        self.hosts = sorted(make_cluster(args.agents, 1)['hosts'])
        cluster_file = os.path.join(workdir, 'cluster.json')
        with open(cluster_file, 'w') as f:
            json.dump(make_cluster(args.agents, args.migrations), f)
        self.config_file = os.path.join(workdir, 'vmmig.conf')
        sections = {
            'DEFAULT': {'transport_url': RABBIT_URL, 'control_exchange': self.exchange,
                        'state_path': workdir, 'embedded': 'false', 'host': 'bench-conductor',
                        'log_file': os.path.join(workdir, 'vmmig.log')},
            'database': {'connection': database_url},
            'agent': {'topic': self.exchange + '-agent'},
            # High limits: this measures orchestration, not throttling.
            'conductor': {'topic': self.exchange + '-conductor',
                          'report_topic': self.exchange + '-conductor-report',
                          'max_concurrent_migrations': 10000,
                          'max_outbound_per_host': 10000, 'max_inbound_per_host': 10000,
                          'worker_threads': args.worker_threads},
            'sim': {'cluster_file': cluster_file, 'clock': 'virtual'},
            # A topic of its own: the notifier also fills a default queue per topic and
            # priority, which nobody reads; the benchmark removes its own afterwards.
            'oslo_messaging_notifications': {'driver': 'messagingv2',
                                             'topics': self.exchange + '-notifications'},
        }
        for setting in args.set or ():
            key, _sep, value = setting.partition('=')
            section, _sep, name = key.rpartition('.')
            sections.setdefault(section or 'DEFAULT', {})[name] = value
        write_config(self.config_file, sections)
        self.procs = {}
        self.checks = True  # the policy checks and request contexts (SIGUSR2 flips)

    def _spawn(self, name, role, args):
        log = open(os.path.join(self.dir, name + '.out'), 'ab')
        counts = os.path.join(self.dir, name + '.counts.json')
        self.procs[name] = (subprocess.Popen(
            [sys.executable, __file__, '--role', role, counts, '--config-file',
             self.config_file] + args, stdout=log, stderr=log), counts)
        log.close()

    def start(self):
        subprocess.run([sys.executable, '-c', 'import sys; from vmmig.cmd.manage import main; '
                        'main(sys.argv[1:])', '--config-file', self.config_file, 'db', 'sync'],
                       check=True, capture_output=True, cwd=self.dir)
        self._spawn('conductor', 'conductor', [])
        n = self.args.agent_processes
        for i in range(n):
            self._spawn('agents-%d' % i, 'agents', ['--hosts', ','.join(self.hosts[i::n]),
                                                    '--name', 'bench-agents-%d' % i])

    def wait_for_hosts(self, timeout=180):
        import sqlalchemy as sa
        engine = sa.create_engine(self._db_url())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    up = conn.exec_driver_sql(
                        "SELECT count(*) FROM hosts WHERE state = 'up'").scalar()
                if up == len(self.hosts):
                    return
                for name, (proc, _c) in self.procs.items():
                    if proc.poll() is not None:
                        sys.exit('%s exited; see %s' % (name, self.dir))
                time.sleep(0.5)
        finally:
            engine.dispose()
        sys.exit('the agents did not all come up in %d s; see %s' % (timeout, self.dir))

    def _db_url(self):
        from vmmig import conf
        return conf.CONF.database.connection

    def mark(self, suffix='.before'):
        """From now on the counts are the migrations' (``.before``), or up to now they
        were (``.after``): each process notes its own."""
        for proc, path in self.procs.values():
            proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not all(os.path.exists(path + suffix) for _p, path in self.procs.values()):
            if time.monotonic() > deadline:
                sys.exit('the services did not note their counts; see %s' % self.dir)
            time.sleep(0.05)

    def switch_checks(self, on, switch_here):
        """Turn the policy checks and request contexts of every process on or off
        (``switch_here``: this process's). Turning on, the senders first and the
        conductor once their last contextless messages are in; turning off, the
        conductor first: no message in between is refused for want of a context."""
        if on == self.checks:
            return
        self.checks, state = on, 'on' if on else 'off'
        conductor = ['conductor']
        senders = [name for name in self.procs if name != 'conductor']
        for group in ((senders, conductor) if on else (conductor, senders)):
            if group is senders:
                switch_here(on)
            for name in group:
                self.procs[name][0].send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 10
            for name in group:
                path = self.procs[name][1] + '.checks'
                while not (os.path.exists(path) and open(path).read() == state):
                    if time.monotonic() > deadline:
                        sys.exit('%s did not turn its checks %s; see %s'
                                 % (name, state, self.dir))
                    time.sleep(0.01)
            if on and group is senders:
                time.sleep(0.2)

    def cpu(self):
        return {name: cpu_seconds(proc.pid) for name, (proc, _c) in self.procs.items()}

    def rss(self):
        return {name: peak_rss(proc.pid) for name, (proc, _c) in self.procs.items()}

    def stop(self):
        stop_processes([proc for proc, _c in self.procs.values()])
        counts = collections.Counter()
        for name, (proc, path) in self.procs.items():
            end = path + '.after' if os.path.exists(path + '.after') else path
            if os.path.exists(end):
                with open(end) as f:
                    counts.update(json.load(f))
            if os.path.exists(path + '.before'):
                with open(path + '.before') as f:
                    counts.subtract(json.load(f))
        topics = [self.exchange + '-conductor', self.exchange + '-agent',
                  self.exchange + '-conductor-report']
        _remove_broker_objects(
            topics + [topics[0] + '.bench-conductor', topics[2] + '.bench-conductor']
            + [topics[1] + '.bench-agents-%d' % i for i in range(self.args.agent_processes)]
            + [self.exchange + '-notifications.%s' % p for p in ('info', 'error')],
            [self.exchange] + [t + '_fanout' for t in topics])
        return counts


class Ends(object):
    """The conductor's end/error notifications, by migration id."""

    def __init__(self, exchange):
        import oslo_messaging as messaging
        from vmmig import conf
        self.cond = threading.Condition()
        self.ended = {}
        self.reasons = {}  # migration id -> reason, of those that did not complete
        self.transport = messaging.get_notification_transport(conf.CONF, url=RABBIT_URL)
        self.listener = messaging.get_notification_listener(
            self.transport, [messaging.Target(topic=exchange + '-notifications',
                                              exchange=exchange)], [self],
            executor='threading')
        self.listener.start()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        if event_type.endswith('.end'):
            self._end(payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._end(payload)

    def _end(self, payload):
        with self.cond:
            self.ended[payload['id']] = (time.time(), payload['state'])
            if payload['state'] != 'completed':
                self.reasons[payload['id']] = payload.get('reason')
            self.cond.notify_all()

    def wait(self, migration_id, timeout=300):
        deadline = time.monotonic() + timeout
        with self.cond:
            while migration_id not in self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError('migration %s did not end in %d s'
                                       % (migration_id, timeout))
                self.cond.wait(left)
            return self.ended[migration_id]

    def stop(self):
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()


def conductor_api():
    from vmmig.conductor import rpcapi
    from vmmig import context as vcontext
    # An operator's request: the default policy lets an admin move VMs.
    return rpcapi.ConductorAPI(context=lambda: vcontext.new('bench', ['admin']))


def drive(services, args, api, ends, names=None, count=None):
    """Closed loop: ``concurrency`` submitters, one migration each at a time, until
    ``count`` (every instance once by default) were asked for."""
    if names is None:
        names = iter(sorted(make_cluster(args.agents, args.migrations)['instances']))
    left = [args.migrations if count is None else count]
    lock = threading.Lock()
    latencies, requests, outcomes, refused = [], [], collections.Counter(), []

    def submitter():
        while True:
            with lock:
                name = next(names, None) if left[0] > 0 else None
                left[0] -= 1
            if name is None:
                return
            asked = time.time()
            try:
                record = api.migrate_server(name, 'live')
            except Exception as e:  # noqa: a refusal is a figure too
                refused.append('%s: %s' % (name, e))
                continue
            answered = time.time()
            ended_at, state = ends.wait(record['id'])
            with lock:
                latencies.append(ended_at - asked)
                requests.append(answered - asked)
                outcomes[state] += 1

    wall = _run_in_threads(submitter, args.concurrency)
    for migration_id, reason in sorted(ends.reasons.items()):
        print('migration %s did not complete: %s' % (migration_id, reason))
    ends.reasons.clear()
    return wall, latencies, requests, outcomes, refused


def policy_pairs(services, args, api, ends, switch_here):
    """``--policy-pairs`` pairs of batches of ``--policy-batch`` migrations, checks on
    then off (ABAB...), the instances moved again in turn. Returns the pairs' wall
    times, mean latencies and conductor CPU seconds, each [(on, off)], and what went
    wrong."""
    import itertools
    names = itertools.cycle(sorted(make_cluster(args.agents, args.migrations)['instances']))
    conductor = services.procs['conductor'][0].pid
    walls, latencies, cpus, problems = [], [], [], collections.Counter()
    for _pair in range(args.policy_pairs):
        wall_pair, latency_pair, cpu_pair = [], [], []
        for on in (True, False):
            services.switch_checks(on, switch_here)
            cpu_start = cpu_seconds(conductor)
            wall, batch_latencies, _req, outcomes, refused = drive(
                services, args, api, ends, names, args.policy_batch)
            cpu_pair.append(cpu_seconds(conductor) - cpu_start)
            wall_pair.append(wall)
            latency_pair.append(statistics.fmean(batch_latencies or [0.0]))
            problems['refused'] += len(refused)
            problems['not completed'] += sum(n for state, n in outcomes.items()
                                             if state != 'completed')
        walls.append(tuple(wall_pair))
        latencies.append(tuple(latency_pair))
        cpus.append(tuple(cpu_pair))
    services.switch_checks(True, switch_here)
    return walls, latencies, cpus, +problems


def print_policy_ratio(walls, latencies, cpus, problems):
    import pairs
    target = 1.05
    if problems:
        print('policy pairs: %s' % ', '.join('%d %s' % (n, k) for k, n in problems.items()))
    if len(walls) < 2:
        print('policy ratio: fewer than 2 pairs, no interval')
        return
    mean, low, high = pairs.mean_interval(on / off for on, off in walls)
    print('policy ratio %.3f (95%% interval %.3f..%.3f, %d pairs)'
          % (mean, low, high, len(walls)))
    print('  target <= %.2f: %s; checks on %.2f s, off %.2f s per batch (mean)' % (
        target, 'met' if high <= target else 'NOT met' if low > target else
        'cannot tell, the interval holds it (more pairs: --policy-pairs)',
        statistics.fmean(on for on, _off in walls),
        statistics.fmean(off for _on, off in walls)))
    print('  each pair, on/off: %s' % ' '.join('%.2f' % (on / off) for on, off in walls))
    # Less noisy than the wall time, which is the batch's slowest migration's.
    for label, samples in (('mean latency', latencies), ('conductor CPU', cpus)):
        ratios = [on / off for on, off in samples if off > 0]
        if len(ratios) >= 2:
            print('  %s ratio %.3f (95%% interval %.3f..%.3f)'
                  % ((label,) + pairs.mean_interval(ratios)))


def phases(database_url):
    """p50 of the time queued (created -> claimed) and running (claimed -> ended)."""
    import sqlalchemy as sa
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql('SELECT created_at, started_at, finished_at '
                                    'FROM migrations WHERE finished_at IS NOT NULL').all()
    engine.dispose()
    if not rows:
        return 0.0, 0.0
    return (percentile([r[1] - r[0] for r in rows], 50),
            percentile([r[2] - r[1] for r in rows], 50))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--migrations', type=int, default=300)
    parser.add_argument('--agents', type=int, default=100)
    parser.add_argument('--agent-processes', type=int, default=4)
    parser.add_argument('--concurrency', type=int, default=16,
                        help='Migrations asked for at once (closed loop), and callers '
                             'of the bare loop.')
    parser.add_argument('--worker-threads', type=int, default=64,
                        help='[conductor] worker_threads of the benchmarked conductor.')
    parser.add_argument('--database', default=POSTGRESQL_URL,
                        help='SQLAlchemy URL of a server in which a database is created.')
    parser.add_argument('--profile-conductor', metavar='PATH',
                        help='Sample the conductor with py-spy during the migrations and '
                             'write the collapsed stacks (--format raw) to PATH.')
    parser.add_argument('--set', action='append', metavar='SECTION.OPTION=VALUE',
                        help='An option of the services\' vmmig.conf (repeatable), e.g. '
                             'agent.heartbeat_interval=30.')
    parser.add_argument('--no-floor', dest='floor', action='store_false',
                        help='Leave out benchmarks/floor.py (the same messages, no vmmig).')
    parser.add_argument('--policy-pairs', type=int, default=10,
                        help='Pairs of batches with the policy checks and request '
                             'contexts on, then off, for the policy ratio (0: none; '
                             'more pairs, a narrower interval).')
    parser.add_argument('--policy-batch', type=int, default=20,
                        help='Migrations in each batch of a policy pair.')
    parser.add_argument('--keep', action='store_true',
                        help='Keep the work directory (logs) and print its path.')
    args = parser.parse_args()

    _importable()
    from vmmig import config
    from vmmig import rpc

    workdir = tempfile.mkdtemp(prefix='vmmig-bench-')
    admin, db_name, db_url = create_database(args.database)
    services = Services(args, workdir, db_url)
    try:
        config.parse_args(['--config-file', services.config_file], setup_logging=False)
        switch_here = _install_policy_switch()
        services.start()
        services.wait_for_hosts()
        print('%d agents up in %d processes; %d migrations, %d at a time'
              % (args.agents, args.agent_processes, args.migrations, args.concurrency),
              flush=True)
        profiler = None
        if args.profile_conductor:
            # py-spy (pip install py-spy) samples the conductor while the migrations run.
            import shutil
            py_spy = shutil.which('py-spy') or os.path.join(os.path.dirname(sys.executable),
                                                            'py-spy')
            profiler = subprocess.Popen(
                [py_spy, 'record', '--pid', str(services.procs['conductor'][0].pid),
                 '--rate', '100', '--gil', '--format', 'raw', '--output',
                 args.profile_conductor, '--nonblocking'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        services.mark()
        cpu_before, machine_before = services.cpu(), machine_cpu_seconds()
        cpu_before.update({'(%s)' % k: v for k, v in service_cpu_seconds().items()})
        api, ends = conductor_api(), Ends(services.exchange)
        wall, latencies, requests, outcomes, refused = drive(services, args, api, ends)
        cpu_after, machine_after = services.cpu(), machine_cpu_seconds()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            profiler.wait(timeout=60)
        cpu_after.update({'(%s)' % k: v for k, v in service_cpu_seconds().items()})
        rss = services.rss()
        queued, running = phases(db_url)
        if args.policy_pairs:
            services.mark('.after')
            policy_figures = policy_pairs(services, args, api, ends, switch_here)
        ends.stop()
        rpc.cleanup()
    finally:
        counts = services.stop()
        drop_database(admin, db_name)
    if refused:
        reasons = collections.Counter(r.split(': ', 1)[1].splitlines()[0][:300] for r in refused)
        print('%d refused: %s' % (len(refused), '; '.join(
            '%d x %s' % (n, reason) for reason, n in reasons.most_common(3))))
    statements = {k: v for k, v in counts.items() if k.startswith('sql:')}
    migration_rpcs = {k: v for k, v in counts.items()
                      if not k.startswith('sql:') and k.split(':', 1)[1] not in BACKGROUND}
    # The driver's own migrate_server calls are not counted in a child process.
    total_rpcs = sum(migration_rpcs.values()) + args.migrations
    done = sum(outcomes.values())
    if not done:
        sys.exit('no migration ended; nothing to compare')
    per = total_rpcs / float(max(done, 1))
    payload = {'instance': make_cluster(1, 1)['instances']['vm0000'], 'pad': 'x' * 512}
    bare_before, bare_machine_before = service_cpu_seconds(), machine_cpu_seconds()
    bare_wall = bare_loop(total_rpcs, args.concurrency, payload)
    bare_machine = machine_cpu_seconds() - bare_machine_before
    bare_services = service_cpu_seconds() - bare_before

    print('outcomes: %s' % dict(outcomes))
    print('RPC messages per migration: %.1f (%s)' % (per, ', '.join(
        '%s %.2f' % (k, v / float(max(done, 1))) for k, v in sorted(migration_rpcs.items()))))
    print('SQL statements per migration (heartbeats included): %.1f '
          '(%s)' % (sum(statements.values()) / float(done), ', '.join(
              '%s %.2f' % (k[4:], v / float(done)) for k, v in sorted(statements.items())
              if v / float(done) >= 0.05)))
    print('%.1f migrations/s' % (done / wall))
    print('overhead p50 %.0f ms p99 %.0f ms (request -> completed)'
          % (percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000))
    print('  of which: request answered p50 %.0f ms; queued p50 %.0f ms; running p50 %.0f ms'
          % (percentile(requests, 50) * 1000, queued * 1000, running * 1000))
    print('vmmig %.2f s, bare loop %.2f s for %d RPC round trips'
          % (wall, bare_wall, total_rpcs))
    print('ratio %.2f' % (wall / bare_wall))
    # The same loop served the way the agents are (one RPC server in each agent
    # process): what oslo.messaging itself costs for that layout, apart from vmmig.
    spread_wall = bare_loop(total_rpcs, args.concurrency, payload,
                            servers=args.agent_processes, processes=args.agent_processes)
    print('bare loop over %d servers in %d processes %.2f s; vmmig against it: ratio %.2f'
          % (args.agent_processes, args.agent_processes, spread_wall, wall / spread_wall))
    used = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    print('CPU s: conductor %.1f, agents %.1f, broker %.1f, driver %.1f, whole machine %.1f'
          % (used['conductor'], sum(v for k, v in used.items() if k.startswith('agents')),
             used['(broker)'], used['(driver)'], machine_after - machine_before))
    print('CPU s of the bare loop: broker %.1f, client %.1f, whole machine %.1f'
          % (bare_services['broker'], bare_services['driver'], bare_machine))
    if args.floor:
        import floor
        floor_wall, floor_cpu = floor.run(args.migrations, args.agents,
                                          args.agent_processes, args.concurrency,
                                          args.database)
        print('floor (the same %d round trips per migration, 2 notifications and 6 SQL '
              'statements, no vmmig code) %.2f s: floor ratio %.2f; vmmig over the floor '
              '%.2f' % (floor.ROUND_TRIPS, floor_wall, floor_wall / bare_wall,
                        wall / floor_wall))
        print('CPU s of the floor: conductor %.1f, agents %.1f, whole machine %.1f'
              % (floor_cpu['conductor'], floor_cpu['agents'], floor_cpu['machine']))
    agents_rss = max(v for k, v in rss.items() if k.startswith('agents'))
    print('peak RSS conductor %.0f MiB, agents %.0f MiB (largest of %d processes)'
          % (rss['conductor'] / MiB, agents_rss / MiB, args.agent_processes))
    if args.policy_pairs:
        print_policy_ratio(*policy_figures)
    if args.keep:
        print('work directory: %s' % workdir)
    else:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--role':
        role_main(sys.argv[2:])
    else:
        main()
