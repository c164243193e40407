"""Every precheck refusing on its own, all reasons at once, host eligibility, bad input.

Each case is a two-host cluster where the destination differs from the source in
one thing only; a refused request records nothing.
"""

import os
import time

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception
from vmmig.hypervisor.libvirt import driver as libvirt_driver
from vmmig.scheduler import filters


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
    ('os', {}, {'os_version': 'Debian 11'},
     'OS version of b is Debian 11, the source has Debian 12: release 11 is older than 12, '
     'and a VM never moves to an older release (a guest started under a newer QEMU/KVM may '
     'use what an older one lacks), whatever [scheduler] os_release_moves says'),
    ('hypervisor', {}, {'hypervisor_version': '8.2.0'},
     'hypervisor (QEMU) version of b is 8.2.0, the source has 7.2.0'),
    ('cluster', {}, {'cluster': 'c2'}, 'cluster of b is c2, the source has default'),
    ('pci', {'pci_devices': ['0000:3b:00.0']}, {},
     'the VM has PCI passthrough device(s) 0000:3b:00.0, which cannot move in a live '
     'migration (a cold migration gives it a free device of the same kind on the '
     'destination)'),
    ('shared-storage', {}, {'shared_storage': 'nfs2'},
     'b does not mount the instances storage of a (nfs2 vs nfs1)'),
]


@pytest.mark.parametrize('what,instance,dest,reason', ALONE, ids=[c[0] for c in ALONE])
def test_each_precheck_refuses_on_its_own(make_cloud, what, instance, dest, reason):
    source = {'pci_devices': [GPU]} if instance.get('pci_devices') else {}
    cloud = make_cloud(h.cluster({'vm': h.vm('a', **instance)}, a=source, b=dest))
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


GPU = {'address': '0000:3b:00.0', 'product': '10de:1db6'}


def _vgpu_free(cloud, host, vtype='nvidia-63'):
    return cloud.agent(host).driver.host_facts()['vgpus'][vtype]['free']


def test_vgpu_moves_live_to_a_host_with_one_free(make_cloud):
    vgpus = {'vgpus': {'nvidia-63': 1}}
    cloud = make_cloud(h.cluster({'vm': h.vm('a', vgpus=['nvidia-63'])}, a=vgpus, b=vgpus))
    assert (_vgpu_free(cloud, 'a'), _vgpu_free(cloud, 'b')) == (0, 1)
    record = cloud.run('vm', 'live', host='b')
    assert record['state'] == 'completed', record['reason']
    assert record['vm_location'] == 'b' and cloud.hosts_of('vm') == ['b']
    assert cloud.on('b', 'vm')['power_state'] == 'running'
    assert cloud.on('b', 'vm')['vgpus'] == ['nvidia-63']
    assert (_vgpu_free(cloud, 'a'), _vgpu_free(cloud, 'b')) == (1, 0)


@pytest.mark.parametrize('dest,reason', [
    ({}, 'b offers no vGPU of type nvidia-63'),
    ({'vgpus': {'nvidia-64': 2}}, 'b offers no vGPU of type nvidia-63'),
    ({'vgpus': {'nvidia-63': 1}}, 'b has 0 free vGPU(s) of type nvidia-63, 1 needed'),
], ids=['none', 'other-type', 'all-taken'])
def test_vgpu_vm_stays_without_a_free_vgpu_of_its_type(make_cloud, dest, reason):
    instances = {'vm': h.vm('a', vgpus=['nvidia-63'])}
    if dest.get('vgpus', {}).get('nvidia-63'):
        instances['other'] = h.vm('b', vgpus=['nvidia-63'])
    cloud = make_cloud(h.cluster(instances, a={'vgpus': {'nvidia-63': 1}}, b=dest))
    assert _refusal(cloud).reasons == [reason]
    assert _refusal(cloud, host=None).reasons == ['no host can take it: b: ' + reason]
    assert cloud.hosts_of('vm') == ['a'] and cloud.on('a', 'vm')['power_state'] == 'running'


def test_the_destination_agent_refuses_a_vgpu_taken_meanwhile(make_cloud):
    # The facts the scheduler read showed one free; another VM took it since.
    vgpus = {'vgpus': {'nvidia-63': 1}}
    cloud = make_cloud(h.cluster({'vm': h.vm('a', vgpus=['nvidia-63'])}, a=vgpus, b=vgpus))
    driver = cloud.agent('b').driver
    driver.cold_define(dict(cloud.find('a', 'vm'), name='taker', power_state='shutoff'), [])
    with pytest.raises(exception.HypervisorError) as err:
        driver.prepare_live_incoming(cloud.find('a', 'vm'), {})
    assert 'no free vGPU for vm of type nvidia-63 (0 free, 1 needed)' in str(err.value)
    assert sorted(i['name'] for i in driver.list_instances()) == ['taker']


# OS releases -------------------------------------------------------------------

@pytest.mark.parametrize('version,release', [
    ('Debian 12', ('debian', (12,), '12')),
    ('Ubuntu 22.04.4', ('ubuntu', (22, 4), '22.04')),
    # What the libvirt driver reports: os-release's PRETTY_NAME.
    ('Ubuntu 22.04.4 LTS', ('ubuntu', (22, 4), '22.04')),
    ('Debian GNU/Linux 12 (bookworm)', ('debian', (12,), '12')),
    ('Red Hat Enterprise Linux 9.3 (Plow)', ('red hat enterprise', (9, 3), '9.3')),
    ('Debian GNU/Linux trixie/sid', None),
    ('Linux-6.1.0-18-amd64-x86_64-with-glibc2.36', None),
])
def test_os_release_is_distribution_and_two_numbers(version, release):
    assert filters.os_release(version) == release


def test_the_libvirt_driver_s_os_version_of_this_machine_is_read():
    if not os.path.exists('/etc/os-release'):
        pytest.skip('no /etc/os-release here')
    assert filters.os_release(libvirt_driver._os_version()) is not None


def _moved_live(cloud, dest):
    record = cloud.run('vm', 'live', host=dest)
    assert record['state'] == 'completed', record['reason']
    assert record['vm_location'] == dest and cloud.hosts_of('vm') == [dest]
    assert cloud.on(dest, 'vm')['power_state'] == 'running'


def test_point_releases_are_one_release(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, a={'os_version': 'Ubuntu 22.04.4'},
                                 b={'os_version': 'Ubuntu 22.04.5'}))
    _moved_live(cloud, 'b')
    _moved_live(cloud, 'a')


def test_a_newer_release_needs_the_option(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, a={'os_version': 'Ubuntu 22.04.4'},
                                 b={'os_version': 'Ubuntu 24.04.1'}))
    assert _refusal(cloud).reasons == [
        'OS version of b is Ubuntu 24.04.1, the source has Ubuntu 22.04.4: release 24.04 is '
        'newer than 22.04; [scheduler] os_release_moves = to_newer_release allows such moves '
        '(an OS upgrade of the cluster)']


def test_during_an_os_upgrade_vms_move_to_the_newer_release_only(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, a={'os_version': 'Ubuntu 22.04.4'},
                                 b={'os_version': 'Ubuntu 24.04.1'}),
                       **{'scheduler.os_release_moves': 'to_newer_release'})
    _moved_live(cloud, 'b')
    error = _refusal(cloud, host='a')
    assert error.reasons == [
        'OS version of a is Ubuntu 22.04.4, the source has Ubuntu 24.04.1: release 22.04 is '
        'older than 24.04, and a VM never moves to an older release (a guest started under '
        'a newer QEMU/KVM may use what an older one lacks), whatever [scheduler] '
        'os_release_moves says']
    assert cloud.hosts_of('vm') == ['b']


@pytest.mark.parametrize('source,dest,reason', [
    ('Ubuntu 22.04.4', 'Debian 12', 'OS version of b is Debian 12, the source has Ubuntu '
                                    '22.04.4: another distribution'),
    ('Debian GNU/Linux trixie/sid', 'Debian GNU/Linux 13 (trixie)',
     "OS version of b is Debian GNU/Linux 13 (trixie), the source has Debian GNU/Linux "
     "trixie/sid (compared whole: 'Debian GNU/Linux trixie/sid' has no release number vmmig "
     "can read)"),
])
def test_other_distribution_or_unreadable_version(make_cloud, source, dest, reason):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, a={'os_version': source},
                                 b={'os_version': dest}),
                       **{'scheduler.os_release_moves': 'to_newer_release'})
    assert _refusal(cloud).reasons == [reason]


# Hypervisor capabilities ---------------------------------------------------------

LACKS = 'the hypervisor of %s lacks the capability %s, which the migration needs for %s'


@pytest.mark.parametrize('host,lacking,vm,options,conf,why', [
    ('b', 'live_migration', {}, {}, {}, 'a live migration'),
    ('a', 'live_migration', {}, {}, {}, 'a live migration'),
    ('b', 'post_copy', {}, {'post_copy': True}, {},
     'post-copy (asked for by the option post_copy)'),
    ('a', 'auto_converge', {}, {}, {'live_migration.permit_auto_converge': True},
     'auto-converge (permitted by [live_migration] permit_auto_converge)'),
    ('b', 'block_migration', {'disks': [h.disk('local')]}, {}, {},
     'copying its local disks live (block migration)'),
], ids=['dest-live', 'source-live', 'post-copy-option', 'auto-converge-conf', 'block'])
def test_a_capability_either_host_lacks_refuses(make_cloud, host, lacking, vm, options,
                                                conf, why):
    cloud = make_cloud(h.cluster({'vm': h.vm('a', **vm)},
                                 **{host: {'capabilities': {lacking: False}}}), **conf)
    reason = LACKS % (host, lacking, why)
    assert _refusal(cloud, **options).reasons == [reason]
    if not options:  # host eligible asks with no options
        verdicts = {v['host']: v for v in cloud.api.host_eligible('vm', 'live')}
        assert reason in verdicts['b']['reasons']
    assert cloud.hosts_of('vm') == ['a'] and cloud.on('a', 'vm')['power_state'] == 'running'


def test_what_a_request_does_not_need_is_not_asked(make_cloud):
    cloud = make_cloud(h.cluster({'vm': h.vm('a')}, b={'capabilities': {
        'post_copy': False, 'auto_converge': False, 'block_migration': False}}))
    _moved_live(cloud, 'b')


def test_a_host_without_live_migration_still_migrates_cold(make_cloud):
    cloud = make_cloud(h.cluster({'off': h.vm('a', power_state='shutoff')},
                                 a={'capabilities': {'live_migration': False}}))
    record = cloud.run('off', 'cold', host='b')
    assert record['state'] == 'completed', record['reason']
    assert cloud.hosts_of('off') == ['b'] and cloud.on('b', 'off')['power_state'] == 'shutoff'


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
        a={'pci_devices': [GPU]},
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
