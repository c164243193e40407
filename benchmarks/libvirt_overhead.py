#!/usr/bin/env python3
"""What vmmig adds to a real live migration: vmmig end to end against a bare migrateToURI3.

One light guest (shared qcow2) on two real libvirt daemons (tools/virt, QEMU TCG)
goes back and forth: in each pair once by a raw ``migrateToURI3`` (the flags and
addresses the libvirt driver uses) and once through vmmig (conductor and agents as
processes over RabbitMQ, production timers; from the ``migrate_server`` request
to the record's ``completed``), the order alternating from pair to pair. Prints
each migration, then::

    ratio <R>                     median over the pairs of vmmig wall / raw wall
                                  (after --warmup pairs that are printed, not counted)
    ratio 95% interval <lo> <hi>  of that median, by resampling the pairs (bootstrap):
                                  one migration's wall varies by about 10 % under TCG,
                                  so the median of a few pairs moves from run to run
    downtime raw <ms> vmmig <ms>  median downtimes (libvirt's figure)

    python benchmarks/libvirt_overhead.py [--pairs 25] [--warmup 1]

(VMMIG_VIRT_DIR and VMMIG_VIRT_NETNS as for the functional tests.)

Needs root, RabbitMQ, and the packages of ``tools/virt/vmmig-virt-env install``.
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import sqlalchemy as sa  # noqa: E402

import orchestration  # noqa: E402  (benchmarks/, this script's folder)

from tests import fixtures as vfix  # noqa: E402
from tests.functional import test_libvirt as tl  # noqa: E402
from tests.functional import virt_env as ve  # noqa: E402

NAME = 'bench-lv'
# Seconds between two looks at the record of a vmmig migration.
POLL = 0.5


def raw_migrate(libvirt, conns, src, dst):
    """The libvirt call the driver makes, alone; (wall s, downtime ms)."""
    dom = conns[src].lookupByName(NAME)
    address = '%s.%s' % (ve.HOST_NET, dst[len('host'):])
    flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
             | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
             | libvirt.VIR_MIGRATE_UNSAFE)
    params = {libvirt.VIR_MIGRATE_PARAM_URI: 'tcp://%s' % address,
              libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: address}
    t0 = time.monotonic()
    dom.migrateToURI3(ve.host_tcp_uri(dst), params, flags)
    wall = time.monotonic() - t0
    stats = conns[dst].lookupByName(NAME).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    return wall, stats.get('downtime'), stats.get('memory_iteration')


def vmmig_migrate(api, engine, dst):
    """migrate_server to completed; (wall s, downtime ms, record)."""
    asked = time.time()
    record = api.migrate_server(NAME, 'live', host=dst)
    query = sa.text('SELECT * FROM migrations WHERE id = :i')
    while True:
        with engine.connect() as conn:
            row = conn.execute(query, {'i': record['id']}).mappings().one()
        if row['state'] in tl.TERMINAL:
            break
        # Unhurried: the wall is read from the record, and every poll is load on the
        # two cores the migration shares with it (the raw call makes none).
        time.sleep(POLL)
    # To the moment the record says completed, not to the poll that saw it.
    wall = row['finished_at'] - asked
    if row['state'] != 'completed':
        raise SystemExit('vmmig migration %s ended %s: %s'
                         % (record['id'], row['state'], row['reason']))
    return wall, row['downtime_ms'], dict(row, asked_at=asked)


def median_interval(values, confidence=0.95, resamples=10000, seed=1):
    """Percentile bootstrap interval of the median of ``values``."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    return medians[int(tail * resamples)], medians[int((1.0 - tail) * resamples) - 1]


def _rounds(iteration):
    return 'rounds %s' % iteration if iteration is not None else ''


def _log_time(log, migration_id, what):
    """The time of the agent's log line 'Migration <id> of ...: job <what>'."""
    import datetime
    m = re.search(r'^(\S+ \S+) .*Migration %d of \S+: job %s' % (migration_id, what), log,
                  re.M)
    return datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S.%f').timestamp() \
        if m else None


def breakdown(services, record):
    """Where the time of one vmmig migration went (ms), from the record and the agent log."""
    log = services.log('agent-' + record['source_host'])
    started = _log_time(log, record['id'], 'started')
    ended = _log_time(log, record['id'], 'completed')
    if started is None or ended is None:
        return ''
    return ('checks+record %.0f, dispatch+prepare+start %.0f, job %.0f, finish+cleanup %.0f'
            % tuple(1000 * x for x in (record['created_at'] - record['asked_at'],
                                       started - record['created_at'], ended - started,
                                       record['finished_at'] - ended)))


def services_cpu_ms(services):
    """CPU time (user + system, ms) the vmmig processes have used so far."""
    total = 0.0
    for proc in services.procs.values():
        try:
            total += orchestration.cpu_seconds(proc.pid)
        except OSError:
            continue  # it has exited
    return 1000.0 * total


def wait_reported(engine, host, timeout=30):
    """vmmig's view catches up with a raw migration (the agents' heartbeats)."""
    deadline = time.monotonic() + timeout
    query = sa.text('SELECT host FROM instances WHERE name = :n')
    while True:
        with engine.connect() as conn:
            row = conn.execute(query, {'n': NAME}).one_or_none()
        if row is not None and row.host == host:
            return
        if time.monotonic() > deadline:
            raise SystemExit('%s not reported on %s' % (NAME, host))
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', type=int, default=25,
                        help='measured pairs (at least 5); one migration\'s wall varies by '
                             'about 10 %% under TCG, so the median needs many')
    parser.add_argument('--warmup', type=int, default=1,
                        help='pairs run first and left out: the first migrations pay '
                             'one-off costs (connections between the daemons, caches)')
    parser.add_argument('--settle', type=float, default=2.0,
                        help='seconds the guest runs between two migrations')
    parser.add_argument('--database', default='sqlite', choices=vfix.BACKENDS)
    parser.add_argument('--logs', action='store_true',
                        help='print the services\' logs at the end (where the time goes)')
    args = parser.parse_args()
    if args.pairs < 5:
        parser.error('--pairs: at least 5 (a median of fewer says little)')

    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture.cleanUp)
        return fixture

    try:
        env = use(ve.VirtEnvFixture(n_hosts=2))
        database = use(vfix.DatabaseFixture(args.database))
        services = use(vfix.ServiceProcesses(
            list(tl.HOSTS), database.url,
            # Production timers where they touch a migration's path; heartbeats often
            # enough that vmmig sees the raw migrations quickly.
            extra_conf={'drivers': {'hypervisor': 'libvirt'},
                        'agent': {'heartbeat_interval': '1'},
                        'conductor': {'heartbeat_timeout': '10', 'dispatch_interval': '1.0',
                                      'progress_interval': '1.0', 'rpc_timeout': '60'},
                        'live_migration': {'monitor_interval': '0.5'}},
            agent_conf={h: tl.agent_conf(env, h) for h in tl.HOSTS}))
        engine = sa.create_engine(database.url)
        stack.append(engine.dispose)

        from vmmig import config
        config.parse_args(['--config-file', services.config_file], setup_logging=False)
        from vmmig.conductor import rpcapi
        from vmmig import context as vcontext
        api = rpcapi.ConductorAPI(context=lambda: vcontext.new('bench', ['admin']))

        conns = {h: libvirt.open(env.uris[h]) for h in tl.HOSTS}
        disk = os.path.join(env.shared_dir, NAME + '.qcow2')
        if not os.path.exists(disk):
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', disk, '64M'],
                           check=True)
        console = os.path.join(env.console_dir, NAME + '.log')
        after = ve.console_offset(console)
        dom = conns['host1'].defineXML(ve.guest_domain_xml(NAME, disks=[disk],
                                                           **tl.LIGHT))
        dom.create()
        ve.wait_for_line(console, r'GUEST-MEM .*ok=yes', 90, after=after, dom=dom)
        wait_reported(engine, 'host1')
        time.sleep(args.settle)

        host = 'host1'
        runs = {'raw': [], 'vmmig': []}
        for pair in range(-args.warmup, args.pairs):
            order = ('raw', 'vmmig') if pair % 2 == 0 else ('vmmig', 'raw')
            for how in order:
                dst = 'host2' if host == 'host1' else 'host1'
                cpu_before = services_cpu_ms(services)
                if how == 'raw':
                    wall, downtime, rounds = raw_migrate(libvirt, conns, host, dst)
                    where = _rounds(rounds)
                else:
                    wall, downtime, record = vmmig_migrate(api, engine, dst)
                    where = '%s  %s' % (_rounds(record['iteration']), breakdown(services, record))
                # What vmmig's processes spent meanwhile: on two cores, CPU they take
                # is CPU the guest and the migration threads do not get.
                cpu = services_cpu_ms(services) - cpu_before
                print('%s %-5s %s -> %s  wall %.2f s  downtime %s ms  vmmig CPU %.0f ms  %s'
                      % ('pair %d' % pair if pair >= 0 else 'warm-up', how, host, dst, wall,
                         downtime, cpu, where), flush=True)
                if pair >= 0:
                    runs[how].append((wall, downtime))
                host = dst
                wait_reported(engine, host)
                time.sleep(args.settle)
        ratios = [v[0] / r[0] for r, v in zip(runs['raw'], runs['vmmig'])]
        print('walls raw %s' % ' '.join('%.2f' % w for w, _d in runs['raw']))
        print('walls vmmig %s' % ' '.join('%.2f' % w for w, _d in runs['vmmig']))
        print('ratio %.2f' % statistics.median(ratios))
        print('ratio 95%% interval %.2f %.2f' % median_interval(ratios))
        print('downtime raw %.0f vmmig %.0f' % (
            statistics.median(d for _w, d in runs['raw']),
            statistics.median(d for _w, d in runs['vmmig'])))
        for conn in conns.values():
            conn.close()
        if args.logs:
            for name in ['conductor-0'] + ['agent-' + h for h in tl.HOSTS]:
                print('--- %s\n%s' % (name, services.log(name)))
    finally:
        while stack:
            stack.pop()()


if __name__ == '__main__':
    main()
