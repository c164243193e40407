"""Every migration type and storage mode through the conductor RPC API, in-process."""

import pytest

from tests import fixtures as vfix
from vmmig.conductor import rpcapi
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig import exception


@pytest.fixture
def cloud():
    fixture = vfix.EmbeddedFixture()
    fixture.setUp()
    yield rpcapi.ConductorAPI(context=vcontext.new('tester', ['admin']))
    fixture.cleanUp()


def _wait(cloud, migration):
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = cloud.migration_get(migration['id'])
        if record['state'] in ('completed', 'failed', 'cancelled', 'error'):
            return record
        time.sleep(0.05)
    raise AssertionError('migration %s did not end: %s' % (migration['id'], record))


@pytest.mark.parametrize('instance,mtype,mode', [
    ('web-1', 'live', 'ephemeral-shared'),
    ('db-1', 'live', 'ephemeral-local'),
    ('app-1', 'live', 'volume-only'),
    ('legacy-1', 'cold', 'ephemeral-local'),
    ('cache-1', 'cold', 'ephemeral-local'),
])
def test_migration_moves_the_vm(cloud, instance, mtype, mode):
    before = db.instance_get(instance)
    migration = cloud.migrate_server(instance, mtype)
    assert migration['storage_mode'] == mode
    record = _wait(cloud, migration)
    assert record['state'] == 'completed', record['reason']
    after = db.instance_get(instance)
    assert after['host'] == record['dest_host'] != before['host']
    assert after['power_state'] == before['power_state']


def test_refusal_lists_every_reason_and_records_nothing(cloud):
    before = db.dump()
    with pytest.raises(exception.PrecheckFailed) as err:
        cloud.migrate_server('gpu-1', 'live', host='sim-d')
    text = str(err.value)
    assert 'PCI passthrough' in text
    assert 'cluster of sim-d is c2' in text
    assert 'hypervisor (QEMU) version' in text
    after = db.dump()
    assert before['migrations'] == after['migrations']
