#!/usr/bin/env python3
"""The floor under benchmarks/orchestration.py: its migrations' messages, and nothing else.

A migration in vmmig is, at the least: the request (a call to the conductor),
the ten calls and casts the conductor makes to the two agents, the source's
progress cast back, a start and an end notification, and a durable record
written with guarded updates. This runs exactly that, with no vmmig code: a
conductor process whose endpoint makes the same calls to agent processes that
answer at once (one RPC server per process, as vmmig's agents listen), and
six raw SQL statements per migration on PostgreSQL through psycopg2 (read the
instance; insert the record; three guarded updates; move the instance). No
scheduler, no prechecks, no heartbeats, no logs.

Its ratio to the bare loop is what any implementation with this message flow
pays on this machine before it does any work of its own; vmmig's ratio over
it is what vmmig's own code costs. Driven the way orchestration.py drives
vmmig (closed loop, end notifications). orchestration.py --floor runs it in
the same run; on its own::

    python benchmarks/floor.py [--migrations 300] [--agents 100]
"""

import argparse
from concurrent import futures
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import orchestration as bench  # noqa: E402  (the same helpers and figures)

# The conductor's calls to the agents, in vmmig's order (see the counts that
# orchestration.py prints): before the record, and while the migration runs.
CHECKS = (('dest', 'check_destination'), ('dest', 'create_storage_probe'),
          ('source', 'check_storage_probe'), ('source', 'get_instance'))
STEPS = (('dest', 'prepare_live_incoming'), ('source', 'start_live_migration'),
         ('source', 'job_status'), ('dest', 'finish_live_incoming'),
         ('source', 'cleanup_live_outgoing'))
# With the request, the progress cast and the probe's removal cast.
ROUND_TRIPS = 1 + len(CHECKS) + len(STEPS) + 2

SCHEMA = ('CREATE TABLE floor_instances (name VARCHAR(255) PRIMARY KEY, '
          'host VARCHAR(255) NOT NULL)',
          'CREATE TABLE floor_migrations (id SERIAL PRIMARY KEY, instance VARCHAR(255), '
          'state VARCHAR(32), source_host VARCHAR(255), dest_host VARCHAR(255), '
          'bytes_total BIGINT, bytes_remaining BIGINT, created_at FLOAT, updated_at FLOAT)')


def _messaging(exchange):
    from oslo_config import cfg
    import oslo_messaging as messaging
    cfg.CONF([], project='vmmig-floor', default_config_files=[])
    messaging.set_transport_defaults(control_exchange=exchange)
    return cfg.CONF, messaging


# -- The agents: answer each call at once ------------------------------------------

class FloorAgent(object):
    """Answers each of the conductor's calls at once; the source casts its progress."""

    def __init__(self, conductor):
        self.conductor = conductor

    def start_live_migration(self, ctxt, host, migration_id=None, instance=None):
        self.conductor.cast({}, 'migration_progress', migration_id=migration_id,
                            stats={'data_total': 1 << 30, 'data_remaining': 0})
        return {'host': host, 'instance': instance}

    def _answer(self, ctxt, host, migration_id=None, instance=None):
        return {'host': host, 'instance': instance}

    check_destination = create_storage_probe = check_storage_probe = get_instance = _answer
    prepare_live_incoming = job_status = finish_live_incoming = _answer
    cleanup_live_outgoing = _answer

    def remove_storage_probe(self, ctxt, host):
        pass


def agent_main(exchange, name):
    conf, messaging = _messaging(exchange)
    transport = messaging.get_rpc_transport(conf, url=bench.RABBIT_URL)
    conductor = messaging.get_rpc_client(
        transport, messaging.Target(topic=exchange + '-conductor', exchange=exchange))
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=exchange + '-agent', server=name, exchange=exchange),
        [FloorAgent(conductor)])
    _serve(server, transport)


def _serve(server, transport, also=()):
    server.start()
    bench.ready_until_sigterm()
    server.stop()
    server.wait()
    for pool in also:
        pool.shutdown(wait=True)
    transport.cleanup()


# -- The conductor: the record and the calls, nothing else -------------------------

class Database(object):
    """A few psycopg2 connections, one statement per transaction (autocommit)."""

    def __init__(self, dsn, size):
        import psycopg2
        self._free = queue.Queue()
        for _ in range(size):
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            self._free.put(conn)

    def run(self, sql, *params):
        conn = self._free.get()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                if cur.description is not None:
                    return cur.fetchone()
                if cur.rowcount != 1:
                    raise RuntimeError('%s matched %d rows' % (sql.split()[0], cur.rowcount))
        finally:
            self._free.put(conn)


class FloorConductor(object):
    def __init__(self, conf, messaging, transport, exchange, db, agents, hosts):
        self.db = db
        self.client = messaging.get_rpc_client(
            transport, messaging.Target(topic=exchange + '-agent', exchange=exchange),
            timeout=60)
        notification_transport = messaging.get_notification_transport(
            conf, url=bench.RABBIT_URL)
        self.notifier = messaging.Notifier(notification_transport, 'floor-conductor',
                                           driver='messagingv2',
                                           topics=[exchange + '-notifications'])
        self.server_of = {host: agents[i % len(agents)] for i, host in enumerate(hosts)}
        self.hosts = hosts
        self._next_dest = itertools.count()
        self.pool = futures.ThreadPoolExecutor(64)

    def _call(self, host, method, **kwargs):
        return self.client.prepare(server=self.server_of[host]).call(
            {}, method, host=host, **kwargs)

    def migrate_server(self, ctxt, instance):
        source = self.db.run('SELECT host FROM floor_instances WHERE name = %s', instance)[0]
        dest = source
        while dest == source:
            dest = self.hosts[next(self._next_dest) % len(self.hosts)]
        where = {'source': source, 'dest': dest}
        for role, method in CHECKS:
            self._call(where[role], method, instance=instance)
        self.client.prepare(server=self.server_of[dest]).cast(
            {}, 'remove_storage_probe', host=dest)
        now = time.time()
        migration_id = self.db.run(
            'INSERT INTO floor_migrations (instance, state, source_host, dest_host, '
            'created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id',
            instance, 'preparing', source, dest, now, now)[0]
        record = {'id': migration_id, 'instance': instance, 'state': 'preparing',
                  'source_host': source, 'dest_host': dest}
        self.pool.submit(self._execute, record, where)
        return record

    def _transition(self, migration_id, expected, target):
        self.db.run('UPDATE floor_migrations SET state = %s, updated_at = %s '
                    'WHERE id = %s AND state = %s', target, time.time(), migration_id,
                    expected)

    def _execute(self, record, where):
        self.notifier.info({}, 'floor.migration.live.start', record)
        self._transition(record['id'], 'preparing', 'running')
        for role, method in STEPS:
            self._call(where[role], method, migration_id=record['id'],
                       instance=record['instance'])
        self._transition(record['id'], 'running', 'completed')
        self.db.run('UPDATE floor_instances SET host = %s WHERE name = %s AND host = %s',
                    where['dest'], record['instance'], where['source'])
        self.notifier.info({}, 'floor.migration.live.end', dict(record, state='completed'))

    def migration_progress(self, ctxt, migration_id, stats):
        self.db.run('UPDATE floor_migrations SET bytes_total = %s, bytes_remaining = %s, '
                    'updated_at = %s WHERE id = %s AND state = %s', stats['data_total'],
                    stats['data_remaining'], time.time(), migration_id, 'running')


def conductor_main(exchange, dsn, agents, hosts):
    conf, messaging = _messaging(exchange)
    transport = messaging.get_rpc_transport(conf, url=bench.RABBIT_URL)
    endpoint = FloorConductor(conf, messaging, transport, exchange, Database(dsn, 10),
                              agents.split(','), hosts.split(','))
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=exchange + '-conductor', server='floor-conductor',
                                    exchange=exchange), [endpoint])
    _serve(server, transport, also=[endpoint.pool])


# -- The run -------------------------------------------------------------------------

def _dsn(url):
    import sqlalchemy as sa
    u = sa.engine.make_url(url)
    return ' '.join('%s=%s' % (k, v) for k, v in (
        ('host', u.host), ('port', u.port), ('user', u.username), ('password', u.password),
        ('dbname', u.database)) if v is not None)


def run(migrations, agents, agent_processes, concurrency, database_server_url):
    """Wall time of ``migrations`` floor migrations, closed loop as orchestration.py's,
    and {'conductor', 'agents', 'machine'}: the CPU seconds they took."""
    import psycopg2
    admin, db_name, db_url = bench.create_database(database_server_url)
    exchange = 'vmmig-floor-%s' % uuid.uuid4().hex[:8]
    cluster = bench.make_cluster(agents, migrations)
    hosts = sorted(cluster['hosts'])
    names = ['floor-agents-%d' % i for i in range(agent_processes)]
    procs = []
    try:
        conn = psycopg2.connect(_dsn(db_url))
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
            cur.executemany('INSERT INTO floor_instances (name, host) VALUES (%s, %s)',
                            [(n, i['host']) for n, i in cluster['instances'].items()])
        conn.close()
        procs = [_spawn('floor-agent', exchange, name) for name in names]
        procs.append(_spawn('floor-conductor', exchange, _dsn(db_url), ','.join(names),
                            ','.join(hosts)))
        for proc in procs:
            if proc.stdout.readline().strip() != 'ready':
                sys.exit('a floor process did not start')
        before = [bench.cpu_seconds(p.pid) for p in procs]
        machine = bench.machine_cpu_seconds()
        wall = _drive(exchange, sorted(cluster['instances']), concurrency)
        used = [bench.cpu_seconds(p.pid) - b for p, b in zip(procs, before)]
        return wall, {'conductor': used[-1], 'agents': sum(used[:-1]),
                      'machine': bench.machine_cpu_seconds() - machine}
    finally:
        bench.stop_processes(procs)
        bench._remove_broker_objects(
            [exchange + '-conductor', exchange + '-conductor.floor-conductor',
             exchange + '-agent'] + ['%s-agent.%s' % (exchange, n) for n in names]
            + [exchange + '-notifications.info'],
            [exchange, exchange + '-conductor_fanout', exchange + '-agent_fanout'])
        bench.drop_database(admin, db_name)


def _spawn(role, *args):
    # Their deprecation warnings (eventlet, imported by oslo.messaging) say nothing here.
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.Popen([sys.executable, __file__, '--role', role] + list(args),
                            stdout=subprocess.PIPE, text=True, env=env)


def _drive(exchange, instances, concurrency):
    messaging, transport = bench._bare_transport()
    client = messaging.get_rpc_client(
        transport, messaging.Target(topic=exchange + '-conductor', exchange=exchange),
        timeout=60)
    ends = bench.Ends(exchange)
    left = iter(instances)
    lock = threading.Lock()

    def submitter():
        while True:
            with lock:
                name = next(left, None)
            if name is None:
                return
            record = client.call({}, 'migrate_server', instance=name)
            ends.wait(record['id'])

    try:
        return bench._run_in_threads(submitter, concurrency)
    finally:
        ends.stop()
        transport.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--migrations', type=int, default=300)
    parser.add_argument('--agents', type=int, default=100)
    parser.add_argument('--agent-processes', type=int, default=4)
    parser.add_argument('--concurrency', type=int, default=16)
    parser.add_argument('--database', default=bench.POSTGRESQL_URL)
    args = parser.parse_args()
    bench._importable()
    from vmmig import config
    config.parse_args([], setup_logging=False)
    wall, cpu = run(args.migrations, args.agents, args.agent_processes, args.concurrency,
                    args.database)
    calls = args.migrations * ROUND_TRIPS
    bare_machine = bench.machine_cpu_seconds()
    payload = {'instance': bench.make_cluster(1, 1)['instances']['vm0000'], 'pad': 'x' * 512}
    bare = bench.bare_loop(calls, args.concurrency, payload)
    bare_machine = bench.machine_cpu_seconds() - bare_machine
    print('%.1f floor migrations/s' % (args.migrations / wall))
    print('floor %.2f s, bare loop %.2f s for %d RPC round trips' % (wall, bare, calls))
    print('floor ratio %.2f' % (wall / bare))
    print('CPU s: floor conductor %.1f, agents %.1f, whole machine %.1f; bare loop, whole '
          'machine %.1f' % (cpu['conductor'], cpu['agents'], cpu['machine'], bare_machine))


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--role':
        role, rest = sys.argv[2], sys.argv[3:]
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if role == 'floor-agent':
            agent_main(*rest)
        elif role == 'floor-conductor':
            conductor_main(*rest)
        else:
            sys.exit('unknown role %s' % role)
    else:
        main()
