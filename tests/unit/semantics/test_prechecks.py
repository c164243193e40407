"""Every precheck refusing on its own, all reasons at once, host eligibility, bad input.

Each case is a two-host cluster where the destination differs from the source in
one thing only; a refused request records nothing.
"""

import time

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception


def _refusal(cloud, instance='vm', mtype='live', host='b', **options):
    before = h.stable_dump()
    with pytest.raises(exception.PrecheckFailed) as err:
        cloud.api.migrate_server(instance, mtype, host=host, options=options)
    assert h.stable_dump() == before
    return err.value


# (what differs, instance spec overrides, destination overrides, expected reason)
ALONE = [
    ('ram', {'memory_mb': 4096}, {'memory_mb': 4096},
     'not enough room on b: 3584 MiB RAM free after the 512 MiB reserved, 4096 MiB needed'),
    ('ram-reserved', {'memory_mb': 4096}, {'memory_mb': 4500},
     'not enough room on b: 3988 MiB RAM free after the 512 MiB reserved, 4096 MiB needed'),
    ('vcpu', {'vcpus': 8}, {'vcpus': 1}, 'not enough room on b: 4 vCPUs free, 8 needed'),
    ('disk', {'disks': [h.disk('local', 80)]}, {'disk_gb': 50},
     'not enough room on b: 50 GiB local disk free, 80 GiB needed'),
    ('cpu-vendor', {}, {'cpu_vendor': 'AMD'}, 'CPU vendor of b is AMD, the VM runs on Intel'),
    ('cpu-features', {'cpu_features': ['avx512f']}, {'cpu_features': ['avx2']},
     'CPU of b lacks avx512f, which the running guest may use'),
    ('os', {}, {'os_version': 'Debian 11'}, 'OS version of b is Debian 11, the source has '
                                            'Debian 12'),
    ('hypervisor', {}, {'hypervisor_version': '8.2.0'},
     'hypervisor (QEMU) version of b is 8.2.0, the source has 7.2.0'),
    ('cluster', {}, {'cluster': 'c2'}, 'cluster of b is c2, the source has default'),
    ('pci', {'pci_devices': ['0000:3b:00.0']}, {},
     'the VM has PCI passthrough device(s) 0000:3b:00.0, which cannot move'),
    ('shared-storage', {}, {'shared_storage': 'nfs2'},
     'b does not mount the instances storage of a (nfs2 vs nfs1)'),
]


@pytest.mark.parametrize('what,instance,dest,reason', ALONE, ids=[c[0] for c in ALONE])
def test_each_precheck_refuses_on_its_own(make_cloud, what, instance, dest, reason):
    cloud = make_cloud(h.cluster({'vm': h.vm('a', **instance)}, b=dest))
    error = _refusal(cloud)
    assert error.reasons == [reason]
    # Where it is not asked for, the same host is simply not a candidate.
    error = _refusal(cloud, host=None)
    assert reason in str(error)
    assert db.migration_list() == []


def test_cpu_check_of_the_destination_agent(make_cloud):
    # The facts agree; the destination's own look at the guest CPU does not.
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    cloud.agent('b').driver.check_cpu_compatible = \
        lambda instance, source_facts: ['the guest CPU model Skylake-Server is not usable']
    error = _refusal(cloud)
    assert error.reasons == ['the guest CPU model Skylake-Server is not usable']


def _count_cpu_checks(cloud, host='b'):
    driver = cloud.agent(host).driver
    seen = []
    real = driver.check_cpu_compatible

    def counted(instance, source_facts):
        seen.append(instance)
        return real(instance, source_facts)
    driver.check_cpu_compatible = counted
    return seen


def test_the_cpu_check_runs_once_beside_the_source_s_answer(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    seen = _count_cpu_checks(cloud)
    source = cloud.agent('a').driver
    real_get = source.get_instance

    def slow_get(name):
        seen.append('source asked')
        time.sleep(0.3)
        seen.append('source answered')
        return real_get(name)
    source.get_instance = slow_get
    record = cloud.run('vm', 'live', host='b')
    assert record['state'] == 'completed', record['reason']
    # Started with the VM as reported, while the source was still answering; its
    # fresh view matched, so the check was not made a second time.
    names = [e if isinstance(e, str) else e['name'] for e in seen]
    assert names.count('vm') == 1
    assert names.index('vm') < names.index('source answered')


def test_the_cpu_check_is_asked_again_when_the_vm_changed_since_its_report(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    seen = _count_cpu_checks(cloud)
    # The last report says 2 vCPUs; the source's fresh view (1) is what must be checked.
    spec = db.instance_get('vm')['spec']
    with db.get_engine().begin() as conn:
        conn.execute(db._INSTANCES.update().where(db._INSTANCES.c.name == 'vm').values(
            spec=dict(spec, vcpus=2)))
    record = cloud.run('vm', 'live', host='b')
    assert record['state'] == 'completed', record['reason']
    assert [i['vcpus'] for i in seen] == [2, 1]


def test_shared_storage_must_be_proven(make_cloud):
    # Both hosts claim the same storage name, but a file made on a is not seen on b.
    cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared')}))
    cloud.agent('b').driver.check_storage_probe = lambda token: False
    error = _refusal(cloud)
    assert error.reasons == ['b does not see the instances storage of a (a probe file '
                             'made on a is not visible there)']
    # Nothing is left behind on the shared storage by the probe (removed by a cast,
    # so a moment after the answer).
    h.wait_for(lambda: h.shared_files(cloud, 'nfs1') == ['vm-vda.img'], 10,
               'the probe file to be removed')


def test_vgpu_is_allowed(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a', vgpus=['nvidia-63'])}))
    assert cloud.run('vm', 'live', host='b')['state'] == 'completed'


def test_destination_down(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    cloud.stop_agent('b')
    assert _refusal(cloud).reasons == ['host b is down (no heartbeat from its agent)']


def test_destination_in_maintenance(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    db.host_set_maintenance('b', True, 'firmware upgrade')
    assert _refusal(cloud).reasons == ['host b is in maintenance: firmware upgrade']


def test_source_in_maintenance_may_be_emptied(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    db.host_set_maintenance('a', True, 'to be emptied')
    assert cloud.run('vm', 'live')['state'] == 'completed'


def test_own_host(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    assert _refusal(cloud, host='a').reasons == ['a is the host the VM is on already']


def test_storage_mode_rules(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a', 'local')}))
    error = _refusal(cloud, mtype='evacuate')
    assert 'evacuate migration is not possible for storage mode ephemeral-local' in str(error)


def test_every_reason_at_once(make_cloud):
    cloud = make_cloud(h.cluster(
        {'vm': h.vm('a', memory_mb=8192, pci_devices=['0000:3b:00.0'])},
        b={'memory_mb': 4096, 'os_version': 'Debian 11', 'hypervisor_version': '8.2.0',
           'cluster': 'c2', 'cpu_vendor': 'AMD', 'shared_storage': 'nfs2'}))
    db.host_set_maintenance('b', True, 'firmware')
    text = str(_refusal(cloud))
    for fragment in ('host b is in maintenance', '3584 MiB RAM free', 'CPU vendor of b is AMD',
                     'OS version of b is Debian 11', 'hypervisor (QEMU) version of b',
                     'cluster of b is c2', 'PCI passthrough',
                     'does not mount the instances storage'):
        assert fragment in text, fragment


def test_vm_and_host_reasons_together(make_cloud):
    # A running VM asked to move cold, to a host of another cluster: both are said.
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, b={'cluster': 'c2'}))
    error = _refusal(cloud, mtype='cold')
    assert any('vm is running' in r for r in error.reasons)
    assert 'cluster of b is c2, the source has default' in error.reasons


def test_checked_again_when_it_starts(make_cloud):
    # Held, the migration waits; meanwhile its destination goes into maintenance.
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    held = cloud.api.migrate_server('vm', 'live', host='b', hold_reason='window')
    db.host_set_maintenance('b', True, 'disk swap')
    cloud.api.migration_resume(held['id'])
    record = cloud.wait_end(held)
    assert record['state'] == 'failed'
    assert 'host b is in maintenance: disk swap' in record['reason']
    assert record['vm_location'] == 'a' and cloud.hosts_of('vm') == ['a']


def test_host_eligible_lists_every_host(make_cloud):
    cloud = make_cloud(h.cluster(
        {'vm': h.vm('a', memory_mb=4096)}, hosts=('a', 'b', 'c', 'd', 'e'),
        c={'cluster': 'c2', 'memory_mb': 2048}, d={}, e={}))
    db.host_set_maintenance('d', True, 'firmware')
    cloud.stop_agent('e')
    verdicts = {v['host']: v for v in cloud.api.host_eligible('vm', 'live')}
    assert sorted(verdicts) == ['a', 'b', 'c', 'd', 'e']
    assert verdicts['b'] == {'host': 'b', 'eligible': True, 'reasons': []}
    assert verdicts['a']['reasons'] == ['a is the host the VM is on already']
    assert verdicts['c']['reasons'] == [
        'not enough room on c: 1536 MiB RAM free after the 512 MiB reserved, 4096 MiB needed',
        'cluster of c is c2, the source has default']
    assert verdicts['d']['reasons'] == ['host d is in maintenance: firmware']
    assert verdicts['e']['reasons'] == ['host e is down (no heartbeat from its agent)']
    assert [v['eligible'] for v in verdicts.values()].count(True) == 1


def test_host_eligible_gives_the_vm_reasons_for_every_host(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a', power_state='shutoff')}))
    verdicts = cloud.api.host_eligible('vm', 'live')
    assert not any(v['eligible'] for v in verdicts)
    assert all(any('vm is shutoff' in r for r in v['reasons']) for v in verdicts)


# Bad input ---------------------------------------------------------------------

BAD = [
    ('unknown-vm', dict(instance='nope', migration_type='live'),
     exception.InstanceNotFound, 'Instance nope could not be found'),
    ('unknown-host', dict(instance='vm', migration_type='live', host='nowhere'),
     exception.HostNotFound, 'Host nowhere could not be found'),
    ('unknown-type', dict(instance='vm', migration_type='teleport'),
     exception.DriverNotFound, "'teleport'"),
    ('wrong-state', dict(instance='off', migration_type='live'),
     exception.PrecheckFailed, 'off is shutoff'),
    ('own-host', dict(instance='vm', migration_type='live', host='a'),
     exception.PrecheckFailed, 'a is the host the VM is on already'),
    ('no-room', dict(instance='big', migration_type='live'),
     exception.PrecheckFailed, 'not enough room on b'),
    ('unknown-option', dict(instance='vm', migration_type='live', options={'speed': 3}),
     exception.InvalidOption, 'not an option of live migration'),
    ('option-type', dict(instance='off', migration_type='cold', options={'shutdown': 'yes'}),
     exception.InvalidOption, 'must be true or false'),
    ('option-number', dict(instance='vm', migration_type='live',
                           options={'max_downtime': -5}),
     exception.InvalidOption, 'must be a whole number from 1 to 2000000'),
    ('option-choice', dict(instance='vm', migration_type='live',
                           options={'timeout_action': 'explode'}),
     exception.InvalidOption, 'possible values: abort, force_complete_postcopy, pause'),
    ('option-of-other-type', dict(instance='vm', migration_type='live',
                                  options={'shutdown': True}),
     exception.InvalidOption, 'for shutdown: not an option of live migration'),
]


@pytest.mark.parametrize('what,request_,error,fragment', BAD, ids=[c[0] for c in BAD])
def test_bad_input_changes_nothing(make_cloud, what, request_, error, fragment):
    cloud = make_cloud(h.cluster({'vm': h.vm('a'), 'off': h.vm('a', power_state='shutoff'),
                                  'big': h.vm('a', memory_mb=40000)}))
    before = h.stable_dump()
    with pytest.raises(error) as err:
        cloud.api.migrate_server(**request_)
    assert fragment in str(err.value)
    assert h.stable_dump() == before
    assert db.migration_list() == []


def test_a_second_migration_of_the_same_vm_is_refused(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    first = cloud.api.migrate_server('vm', 'live', hold_reason='later')
    before = h.stable_dump()
    with pytest.raises(exception.PrecheckFailed) as err:
        cloud.api.migrate_server('vm', 'live')
    assert 'it already has migration %s, which is held' % first['id'] in str(err.value)
    assert h.stable_dump() == before


@pytest.mark.parametrize('max_age,asked', [(30.0, 1), (0.0, 2)])
def test_a_passed_cpu_check_is_trusted_for_host_checks_max_age(make_cloud, max_age, asked):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}),
                       **{'conductor.host_checks_max_age': max_age})
    seen = _count_cpu_checks(cloud, 'b')
    for dest in ('b', 'a', 'b'):
        record = cloud.run('vm', 'live', host=dest)
        assert record['state'] == 'completed', record['reason']
    # The way back to a is checked by a's agent, not counted here.
    assert len(seen) == asked


def test_a_failed_cpu_check_is_not_remembered(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
    driver = cloud.agent('b').driver
    real, asked = driver.check_cpu_compatible, []

    def refusing(instance, source_facts):
        asked.append(instance['name'])
        return ['CPU of b lacks feature(s) the guest uses: avx512f']
    driver.check_cpu_compatible = refusing
    assert _refusal(cloud).reasons == ['CPU of b lacks feature(s) the guest uses: avx512f']
    # The host was fixed: the next request asks again and sees it.
    driver.check_cpu_compatible = real
    seen = _count_cpu_checks(cloud, 'b')
    assert cloud.run('vm', 'live', host='b')['state'] == 'completed'
    assert len(asked) == 1 and len(seen) == 1
