"""The room of migrations on their way: a destination is not filled twice.

Until its agent reports again, a host's facts do not show the VMs that are
coming or just came; the scheduler and the record count them instead.
"""

import collections
from concurrent import futures

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception

VM_MB = 4096
# Room for two such VMs after the 512 MiB reserved, and 1000 MiB to spare.
TWO_VMS = {'memory_mb': 512 + 2 * VM_MB + 1000}
# No report from the agents while a test runs: only the records tell what is coming.
NO_REPORTS = {'agent.heartbeat_interval': 3600.0, 'agent.full_report_interval': 3600.0,
              'conductor.heartbeat_timeout': 600.0}


def _vms(n, host='a'):
    return {'vm%d' % i: h.vm(host, memory_mb=VM_MB) for i in range(1, n + 1)}


def _destinations():
    return collections.Counter(m['dest_host'] for m in db.migration_list())


def test_requests_without_a_host_spread_instead_of_filling_one(make_cloud):
    cloud = make_cloud(h.cluster(_vms(5), hosts=('a', 'b', 'c'), b=TWO_VMS, c=TWO_VMS),
                       **NO_REPORTS)
    for i in range(1, 5):
        assert cloud.run('vm%d' % i, 'live')['state'] == 'completed'
    assert _destinations() == {'b': 2, 'c': 2}
    with pytest.raises(exception.PrecheckFailed) as err:
        cloud.api.migrate_server('vm5', 'live')
    assert ('not enough room on b: 1000 MiB RAM free after the 512 MiB reserved and the '
            '8192 MiB of 2 migration(s) on their way there, 4096 MiB needed') \
        in str(err.value)
    verdicts = {v['host']: v for v in cloud.api.host_eligible('vm5', 'live')}
    assert 'on their way there' in verdicts['c']['reasons'][0]

    # Once the destinations report, their facts show the VMs and the records stop
    # counting: the room is the same, said from the facts.
    for host in ('b', 'c'):
        assert cloud.agent(host).manager.heartbeat() is True
    h.wait_for(lambda: db.inbound() == {}, 10, 'the reports to show the VMs that came')
    with pytest.raises(exception.PrecheckFailed) as err:
        cloud.api.migrate_server('vm5', 'live')
    assert ('not enough room on b: 1000 MiB RAM free after the 512 MiB reserved, '
            '4096 MiB needed') in str(err.value)
    assert len(db.migration_list()) == 4


def test_requests_at_once_for_the_last_room_of_a_host(make_cloud):
    """Their checks all pass side by side; the record, under the dispatch lock, lets
    one in."""
    cloud = make_cloud(h.cluster(_vms(4), b={'memory_mb': 512 + VM_MB + 1000}),
                       **NO_REPORTS)
    with futures.ThreadPoolExecutor(4) as pool:
        asked = [pool.submit(cloud.api.migrate_server, 'vm%d' % i, 'live', host='b')
                 for i in range(1, 5)]
        refused = [f.exception() for f in asked if f.exception() is not None]
    assert len(refused) == 3
    for error in refused:
        assert isinstance(error, exception.PrecheckFailed)
        assert 'of 1 migration(s) on their way there' in str(error)
    [recorded] = db.migration_list()
    assert cloud.wait_end(recorded)['state'] == 'completed'


def test_an_evacuation_places_each_vm_with_the_room_of_those_before(make_cloud):
    # The HA monitor off: under load it saw a down and evacuated it first.
    cloud = make_cloud(h.cluster(_vms(3), hosts=('a', 'b', 'c'), b=TWO_VMS, c=TWO_VMS),
                       **{'drivers.fencing': 'sim', 'ha.enabled': False})
    cloud.stop_agent('a')
    recorded = cloud.api.evacuate_host('a')
    assert sorted(m['state'] for m in recorded) != ['refused'] * 3
    for migration in recorded:
        assert cloud.wait_end(migration)['state'] == 'completed'
    assert sorted(_destinations().values()) == [1, 2]


def test_a_vm_moved_back_and_forth_takes_room_once(make_cloud):
    """Room for two such VMs on each host, and no report while it moves: a completed
    migration counts only while its VM is still on its destination (the instance
    record says where it is), and not where the destination's facts show it already.

    (a's facts keep showing the VM all along: they were taken before it first left.)"""
    cloud = make_cloud(h.cluster({'vm1': h.vm('a', memory_mb=VM_MB)}, a=TWO_VMS,
                                 b=TWO_VMS), **NO_REPORTS)
    for move in range(6):
        dest = 'b' if move % 2 == 0 else 'a'
        done = cloud.run('vm1', 'live', host=dest)
        assert done['state'] == 'completed', (move, done['reason'])
        assert db.instance_get('vm1')['host'] == dest
        assert cloud.on(dest, 'vm1')['power_state'] == 'running'
        assert cloud.hosts_of('vm1') == [dest]
    # Back on a, whose facts (reported before the first move) show it already.
    assert db.inbound() == {}
