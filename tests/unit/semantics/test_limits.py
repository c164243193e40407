"""Concurrency limits: out of one host, into one host, in total; the queue keeps its order."""

import threading
import time

import sqlalchemy as sa

from tests.unit.semantics import helpers as h
from vmmig import conf
from vmmig.db import states

CONF = conf.CONF

HOSTS = ('a', 'b', 'c', 'd')
LIMITS = {'total': 3, 'outbound': 1, 'inbound': 2}
# Tolerance for two timestamps written by two transactions racing for the same lock.
SLACK = 0.05


def _cluster(count):
    instances, routes = {}, {}
    for i in range(count):
        source = HOSTS[i % len(HOSTS)]
        # Destinations vary so that some queued migrations can overtake blocked ones.
        dest = HOSTS[(i % len(HOSTS) + 1 + (i // len(HOSTS)) % 3) % len(HOSTS)]
        name = 'vm-%02d' % i
        instances[name] = h.vm(source, 'shared', memory_mb=256,
                               workload={'dirty_rate_mbps': 5, 'wws_mb': 16})
        routes[name] = dest
    return h.cluster(instances, hosts=HOSTS), routes


class Sampler(threading.Thread):
    """Reads the active migrations from the database, again and again, while they run.

    Through a connection of its own with plain reads: in WAL mode they see the last
    commit without taking the write lock the services need.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(CONF.database.connection)
        self.stop = threading.Event()
        self.samples = 0
        self.max_total = 0
        self.max_outbound = {}
        self.max_inbound = {}

    def run(self):
        query = sa.text('SELECT source_host, dest_host FROM migrations WHERE state IN '
                        '(%s)' % ', '.join("'%s'" % s for s in sorted(states.ACTIVE)))
        while not self.stop.is_set():
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            outbound, inbound, total = {}, {}, len(rows)
            for source, dest in rows:
                outbound[source] = outbound.get(source, 0) + 1
                inbound[dest] = inbound.get(dest, 0) + 1
            self.samples += 1
            self.max_total = max(self.max_total, total)
            for host, n in outbound.items():
                self.max_outbound[host] = max(self.max_outbound.get(host, 0), n)
            for host, n in inbound.items():
                self.max_inbound[host] = max(self.max_inbound.get(host, 0), n)
            time.sleep(0.002)
        self.engine.dispose()


def _busy_at(records, t):
    """Migrations that held a slot at time t, by their start and end stamps."""
    return [r for r in records if r['started_at'] < t and r['finished_at'] > t - SLACK]


def _timeline(records, t):
    """(id, source, destination, start, end) around t, relative to it, for a failure."""
    return [(x['id'], x['source_host'], x['dest_host'], round(x['started_at'] - t, 3),
             round(x['finished_at'] - t, 3))
            for x in records if abs(x['finished_at'] - t) < 1 or abs(x['started_at'] - t) < 1]


def test_limits_hold_and_the_queue_keeps_its_order(make_cloud):
    cluster, routes = _cluster(50)
    cloud = make_cloud(cluster, **{
        'sim.clock': 'scaled', 'sim.time_scale': 4.0,
        'conductor.max_concurrent_migrations': LIMITS['total'],
        'conductor.max_outbound_per_host': LIMITS['outbound'],
        'conductor.max_inbound_per_host': LIMITS['inbound']})
    # Everything is submitted held, then released at once: the queue is full before
    # the dispatcher takes the first one.
    submitted = [cloud.api.migrate_server(name, 'live', host=dest, hold_reason='batch')
                 for name, dest in sorted(routes.items())]
    sampler = Sampler()
    sampler.start()
    for migration in submitted:
        cloud.api.migration_resume(migration['id'])
    try:
        records = [cloud.wait_end(m, timeout=120) for m in submitted]
    finally:
        sampler.stop.set()
        sampler.join()

    assert all(r['state'] == 'completed' for r in records), \
        [(r['id'], r['state'], r['reason']) for r in records if r['state'] != 'completed']
    assert sampler.samples > 50
    # Never beyond a limit, and every limit was reached: the test measured something.
    assert sampler.max_total == LIMITS['total']
    assert max(sampler.max_outbound.values()) == LIMITS['outbound']
    assert max(sampler.max_inbound.values()) <= LIMITS['inbound']

    # Submission order: a migration never started while an older one that had room
    # (a free slot out of its source, into its destination, and in total) still waited.
    by_start = sorted(records, key=lambda r: r['started_at'])
    for r in by_start:
        busy = [b for b in _busy_at(records, r['started_at']) if b['id'] != r['id']]
        for older in records:
            if older['id'] >= r['id'] or older['started_at'] <= r['started_at']:
                continue
            room = (len(busy) < LIMITS['total']
                    and sum(b['source_host'] == older['source_host'] for b in busy)
                    < LIMITS['outbound']
                    and sum(b['dest_host'] == older['dest_host'] for b in busy)
                    < LIMITS['inbound'])
            assert not room, 'migration %s started before older %s, which had room: %s' % (
                r['id'], older['id'], _timeline(records, r['started_at']))
    # Same source and destination: strictly first come, first served.
    for pair in {(r['source_host'], r['dest_host']) for r in records}:
        same = [r for r in records if (r['source_host'], r['dest_host']) == pair]
        assert [r['id'] for r in sorted(same, key=lambda r: r['started_at'])] == \
            sorted(r['id'] for r in same)
    # And every VM sits where its record says.
    for name, dest in routes.items():
        assert cloud.hosts_of(name) == [dest]
