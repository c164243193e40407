"""A live migration whose job completed: what breaks afterwards is told, not rolled back.

Once the hypervisor reports the job completed, the guest has left the source.
A finish on the destination or a clean-up of the source that fails then must
not leave a record saying the VM stayed where it was.
"""

from tests.unit.semantics import helpers as h
from vmmig.db import api as db
from vmmig import exception


def _run_with_a_broken_step(make_cloud, mtype, host, method, message, **vm):
    """Move 'vm' from a to b while ``method`` of the driver on ``host`` fails."""
    cloud = make_cloud(h.cluster({'vm': h.vm('a', 'shared', **vm)}))

    def broken(*_args, **_kwargs):
        raise exception.HypervisorError(host=host, reason=message)
    setattr(cloud.agent(host).driver, method, broken)
    return cloud, cloud.run('vm', mtype, host='b')


def test_a_failed_finish_says_where_the_vm_went(make_cloud):
    cloud, record = _run_with_a_broken_step(make_cloud, 'live', 'b', 'finish_live_incoming',
                                            'resume refused')
    assert (record['state'], record['vm_location']) == ('error',
                                                        'b (migrated; not confirmed)')
    assert 'finish on b failed' in record['reason']
    assert 'resume refused' in record['reason']
    # The truth on the hosts: the guest left a, and b holds it (the simulator keeps
    # it marked incoming, as no finish took it over).
    assert cloud.find('a', 'vm') is None
    assert cloud.hosts_of('vm') == ['b+incoming']


def test_a_failed_clean_up_completes_and_says_what_is_left(make_cloud):
    cloud, record = _run_with_a_broken_step(make_cloud, 'live', 'a', 'cleanup_live_outgoing',
                                            'disk busy')
    assert (record['state'], record['vm_location']) == ('completed', 'b'), record['reason']
    assert 'clean-up of a failed' in record['reason']
    assert 'disk busy' in record['reason']
    assert db.instance_get('vm')['host'] == 'b'
    assert cloud.find('b', 'vm')['power_state'] == 'running'


def test_cold_a_failed_source_clean_up_says_the_vm_moved(make_cloud):
    cloud, record = _run_with_a_broken_step(make_cloud, 'cold', 'a', 'undefine',
                                            'permission denied', power_state='shutoff')
    assert (record['state'], record['vm_location']) == (
        'error', 'b (moved; the migration did not finish)')
    assert 'permission denied' in record['reason']
    assert 'after the VM moved to b' in record['reason']
    # The verified copy is on b; a still defines the stopped original the clean-up
    # could not remove, which the reason tells the operator to look at.
    assert cloud.find('b', 'vm')['power_state'] == 'shutoff'
    assert cloud.find('a', 'vm')['power_state'] == 'shutoff'
