"""Each migration type in each storage mode it allows, and a refusal for each it does not."""

import os

import pytest

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception

MODES = {'shared': 'ephemeral-shared', 'local': 'ephemeral-local', 'volume': 'volume-only'}


def _moved(cloud, name, record, source='a', dest='b'):
    """The VM is defined on the destination only, the records agree."""
    assert record['state'] == 'completed', record['reason']
    assert record['dest_host'] == dest and record['vm_location'] == dest
    assert cloud.hosts_of(name) == [dest]
    assert cloud.find(source, name) is None
    assert db.instance_get(name)['host'] == dest
    return cloud.on(dest, name)


def _local_files(cloud, host):
    return sorted(os.listdir(os.path.join(cloud.state_path, 'sim', 'local', host)))


class TestStorageMode:
    @pytest.mark.parametrize('disks,mode', [
        ([h.disk('volume'), h.disk('volume', name='vdb')], 'volume-only'),
        ([h.disk('shared'), h.disk('volume', name='vdb')], 'ephemeral-shared'),
        ([h.disk('shared'), h.disk('local', name='vdb')], 'ephemeral-local'),
        ([h.disk('volume'), h.disk('local', name='vdb')], 'ephemeral-local'),
    ])
    def test_mode_follows_the_disks(self, make_cloud, disks, mode):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', disks=disks)}))
        assert db.instance_get('vm')['storage_mode'] == mode
        migration = cloud.api.migrate_server('vm', 'live')
        assert migration['storage_mode'] == mode
        assert cloud.wait_end(migration)['state'] == 'completed'


class TestLive:
    def test_shared_storage_copies_nothing(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared')}))
        before = cloud.on('a', 'vm')
        record = cloud.run('vm', 'live')
        after = _moved(cloud, 'vm', record)
        assert record['storage_mode'] == 'ephemeral-shared'
        assert after['power_state'] == 'running'
        # The same file on the shared storage, no block copy.
        assert after['disks'][0]['path'] == before['disks'][0]['path']
        assert os.path.exists(after['disks'][0]['path'])
        assert not record['disk_total']

    def test_local_disks_are_block_copied(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'local', disks=[h.disk('local', 4)])}))
        record = cloud.run('vm', 'live')
        after = _moved(cloud, 'vm', record)
        assert record['storage_mode'] == 'ephemeral-local'
        assert after['power_state'] == 'running'
        assert record['disk_total'] == 4 * 1024 ** 3
        assert record['bytes_total'] >= 4 * 1024 ** 3 + 1024 ** 3
        assert _local_files(cloud, 'a') == []

    def test_volumes_move_from_source_to_destination(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'volume')}))
        assert cloud.volumes('a') == {'vol-vda': 'vm'}
        record = cloud.run('vm', 'live')
        after = _moved(cloud, 'vm', record)
        assert record['storage_mode'] == 'volume-only'
        assert after['power_state'] == 'running'
        assert cloud.volumes('b') == {'vol-vda': 'vm'}
        assert cloud.volumes('a') == {}

    def test_paused_vm_stays_paused(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared', power_state='paused')}))
        record = cloud.run('vm', 'live')
        assert _moved(cloud, 'vm', record)['power_state'] == 'paused'

    @pytest.mark.parametrize('power_state', ['shutoff', 'suspended'])
    def test_refused_for_a_vm_that_does_not_run(self, make_cloud, power_state):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', power_state=power_state)}))
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'live')
        assert 'vm is %s' % power_state in str(err.value)
        assert 'cold migration' in str(err.value)
        assert db.migration_list() == []


class TestCold:
    @pytest.mark.parametrize('location', ['shared', 'local', 'volume'])
    def test_shut_off_vm_stays_shut_off(self, make_cloud, location):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', location, power_state='shutoff')}))
        record = cloud.run('vm', 'cold')
        after = _moved(cloud, 'vm', record)
        assert record['storage_mode'] == MODES[location]
        assert after['power_state'] == 'shutoff'
        if location == 'local':
            assert record['checksum'] and record['bytes_total'] > 0
            assert _local_files(cloud, 'b') == ['vm-vda.img']
        if location == 'volume':
            assert cloud.volumes('b') == {'vol-vda': 'vm'} and cloud.volumes('a') == {}
        assert _local_files(cloud, 'a') == []

    @pytest.mark.parametrize('location', ['shared', 'local', 'volume'])
    def test_suspended_vm_stays_suspended_with_its_memory(self, make_cloud, location):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', location, power_state='suspended')}))
        saved = cloud.on('a', 'vm')['saved_state']
        with open(saved, 'rb') as f:
            memory = f.read()
        record = cloud.run('vm', 'cold')
        after = _moved(cloud, 'vm', record)
        assert after['power_state'] == 'suspended'
        # The saved memory went across, byte for byte, and its checksum is in the record.
        assert after['saved_state'] != saved and not os.path.exists(saved)
        with open(after['saved_state'], 'rb') as f:
            assert f.read() == memory
        assert record['checksum']
        assert _local_files(cloud, 'a') == []

    def test_running_vm_is_refused_without_shutdown(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a')}))
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'cold')
        assert 'vm is running' in str(err.value) and '--shutdown' in str(err.value)
        assert db.migration_list() == []
        assert cloud.on('a', 'vm')['power_state'] == 'running'

    @pytest.mark.parametrize('ignores_acpi', [False, True])
    def test_shutdown_then_started_on_destination(self, make_cloud, ignores_acpi):
        workload = {'dirty_rate_mbps': 10, 'wws_mb': 64, 'ignores_acpi': ignores_acpi}
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'local', workload=workload)}))
        record = cloud.run('vm', 'cold', shutdown=True, shutdown_timeout=30)
        after = _moved(cloud, 'vm', record)
        assert after['power_state'] == 'running'
        assert record['checksum']
        assert _local_files(cloud, 'a') == []
        assert 'forced' in record['reason'] if ignores_acpi else 'graceful' in record['reason']


GPU = '10de:1db6'


def _gpus(*addresses, product=GPU):
    return {'pci_devices': [{'address': a, 'product': product} for a in addresses]}


def _holders(cloud, host):
    """{device address: the VM holding it or None} from the host's own facts."""
    return {d['address']: d['instance']
            for d in cloud.agent(host).driver.host_facts()['pci_devices']}


class TestPciPassthrough:
    @pytest.mark.parametrize('power_state', ['shutoff', 'suspended'])
    def test_cold_gives_it_a_free_device_of_the_same_kind(self, make_cloud, power_state):
        cloud = make_cloud(h.cluster(
            {'vm': h.vm('a', power_state=power_state, pci_devices=['0000:3b:00.0']),
             'other': h.vm('b', power_state='shutoff', pci_devices=['0000:3b:00.0'])},
            a=_gpus('0000:3b:00.0'),
            # b's first device of that kind is taken, and one of another kind is free.
            b={'pci_devices': [{'address': '0000:3b:00.0', 'product': GPU},
                               {'address': '0000:5e:00.0', 'product': '15b3:101e'},
                               {'address': '0000:af:00.0', 'product': GPU}]}))
        record = cloud.run('vm', 'cold', host='b')
        after = _moved(cloud, 'vm', record)
        assert after['power_state'] == power_state
        assert after['pci_devices'] == ['0000:af:00.0']
        assert cloud.find('b', 'vm')['pci_products'] == {'0000:af:00.0': GPU}
        assert db.instance_get('vm')['spec']['pci_devices'] == ['0000:af:00.0']
        assert _holders(cloud, 'b') == {'0000:3b:00.0': 'other', '0000:5e:00.0': None,
                                        '0000:af:00.0': 'vm'}
        assert _holders(cloud, 'a') == {'0000:3b:00.0': None}

    @pytest.mark.parametrize('dest,why', [
        ({}, '0 free of kind 10de:1db6, 1 needed'),
        (_gpus('0000:3b:00.0', product='15b3:101e'), '0 free of kind 10de:1db6, 1 needed'),
        ({'pci_devices': [{'address': '0000:3b:00.0', 'product': GPU, 'assignable': False}]},
         '0 free of kind 10de:1db6, 1 needed'),
    ], ids=['none', 'other-kind', 'not-assignable'])
    def test_cold_refused_without_a_free_device_of_its_kind(self, make_cloud, dest, why):
        cloud = make_cloud(h.cluster(
            {'vm': h.vm('a', power_state='shutoff', pci_devices=['0000:3b:00.0'])},
            a=_gpus('0000:3b:00.0'), b=dest))
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'cold', host='b')
        assert err.value.reasons == [
            'b has no free PCI passthrough device for 0000:3b:00.0 of the VM: ' + why]
        assert db.migration_list() == []
        assert cloud.hosts_of('vm') == ['a'] and cloud.on('a', 'vm')['power_state'] == 'shutoff'
        assert cloud.on('a', 'vm')['pci_devices'] == ['0000:3b:00.0']

    def test_cold_refused_when_the_kind_of_its_device_is_unknown(self, make_cloud):
        cloud = make_cloud(h.cluster(
            {'vm': h.vm('a', power_state='shutoff', pci_devices=['0000:3b:00.0'])},
            a={'pci_devices': [{'address': '0000:3b:00.0'}]}, b=_gpus('0000:3b:00.0')))
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'cold', host='b')
        assert err.value.reasons == [
            'the kind (vendor:product id) of PCI passthrough device(s) 0000:3b:00.0 of the VM '
            'is not known, so no device of b can be matched to it']
        assert cloud.hosts_of('vm') == ['a'] and cloud.on('a', 'vm')['power_state'] == 'shutoff'

    def test_live_is_still_refused(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', pci_devices=['0000:3b:00.0'])},
                                     a=_gpus('0000:3b:00.0'), b=_gpus('0000:3b:00.0')))
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'live', host='b')
        assert 'PCI passthrough device(s) 0000:3b:00.0, which cannot move in a live' in str(
            err.value)
        assert cloud.hosts_of('vm') == ['a'] and cloud.on('a', 'vm')['power_state'] == 'running'

    def test_the_destination_agent_never_gives_a_device_twice(self, make_cloud):
        # Two VMs reach b before its facts show the first one's device taken: the
        # agent chooses under its lock, and the second finds none left.
        cloud = make_cloud(h.cluster(
            {'vm': h.vm('a', power_state='shutoff', pci_devices=['0000:3b:00.0']),
             'vm2': h.vm('a', power_state='shutoff', pci_devices=['0000:3c:00.0'])},
            a=_gpus('0000:3b:00.0', '0000:3c:00.0'), b=_gpus('0000:af:00.0')))
        driver = cloud.agent('b').driver
        first = driver.cold_define(cloud.find('a', 'vm'), [])
        assert first['pci_devices'] == ['0000:af:00.0']
        with pytest.raises(exception.HypervisorError) as err:
            driver.cold_define(cloud.find('a', 'vm2'), [])
        assert ('no free PCI passthrough device of kind 10de:1db6 for vm2 (its device '
                '0000:3c:00.0)') in str(err.value)
        assert [i['name'] for i in driver.list_instances()] == ['vm']


class TestEvacuate:
    def _down(self, cloud, host='a'):
        cloud.stop_agent(host)

    @pytest.mark.parametrize('location', ['shared', 'volume'])
    def test_rebuilt_on_a_healthy_host(self, make_cloud, location):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', location)}),
                           **{'drivers.fencing': 'sim'})
        self._down(cloud)
        record = cloud.run('vm', 'evacuate')
        assert record['state'] == 'completed', record['reason']
        assert record['storage_mode'] == MODES[location]
        assert record['vm_location'] == 'b' and db.instance_get('vm')['host'] == 'b'
        assert cloud.find('b', 'vm')['power_state'] == 'running'
        if location == 'volume':
            assert cloud.volumes('b') == {'vol-vda': 'vm'}
        # The dead host comes back: it runs nothing it had, and forgets the VM.
        cloud.start_agent('a')
        h.wait_for(lambda: cloud.hosts_of('vm') == ['b'], 10, 'a to forget vm')
        assert cloud.find('a', 'vm') is None
        assert db.instance_get('vm')['host'] == 'b'

    @pytest.mark.parametrize('before, after, lost', [
        ('shutoff', 'shutoff', None),
        # Its memory was in the dead host's RAM: starting it would run a guest an
        # operator had stopped, from its disk; it stays off and the record says why.
        ('paused', 'shutoff', 'vm was paused on a: its memory was lost'),
        # The simulator keeps saved memory on the host's local storage.
        ('suspended', 'shutoff', 'vm was suspended on a: its saved memory was lost'),
    ])
    def test_the_power_state_is_kept_or_the_record_says_what_was_lost(
            self, make_cloud, before, after, lost):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared', power_state=before)}),
                           **{'drivers.fencing': 'sim'})
        self._down(cloud)
        record = cloud.run('vm', 'evacuate')
        assert record['state'] == 'completed', record['reason']
        assert record['vm_location'] == 'b' and db.instance_get('vm')['host'] == 'b'
        assert cloud.find('b', 'vm')['power_state'] == after
        assert db.instance_get('vm')['spec']['power_state'] == after
        assert record['reason'].startswith('fenced: ')
        if lost:
            assert '%s; it is shut off on b' % lost in record['reason']
        else:
            assert 'lost' not in record['reason']

    def test_refused_for_local_disks_with_the_reason(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'local')}), **{'drivers.fencing': 'sim'})
        self._down(cloud)
        before = db.dump()
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'evacuate')
        assert 'evacuate migration is not possible for storage mode ephemeral-local' \
            in str(err.value)
        assert 'local storage of the failed host' in str(err.value)
        assert db.dump()['migrations'] == before['migrations']

    def test_refused_while_the_source_is_up(self, make_cloud):
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared')}), **{'drivers.fencing': 'sim'})
        with pytest.raises(exception.PrecheckFailed) as err:
            cloud.api.migrate_server('vm', 'evacuate')
        assert 'host a is up' in str(err.value)
        assert db.migration_list() == []
        assert cloud.hosts_of('vm') == ['a']

    def test_fails_when_fencing_does_not_confirm(self, make_cloud):
        # The heartbeat fencing driver wants a minute of silence; the host was just lost.
        cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared')}),
                           **{'drivers.fencing': 'heartbeat', 'conductor.fencing_grace': 600})
        self._down(cloud)
        record = cloud.run('vm', 'evacuate')
        assert record['state'] == 'failed'
        assert 'not fenced' in record['reason'] and 'silent for' in record['reason']
        assert record['vm_location'] == 'a'
        assert cloud.hosts_of('vm') == ['a']
        assert db.instance_get('vm')['host'] == 'a'
