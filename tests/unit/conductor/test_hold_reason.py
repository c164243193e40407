"""A hold needs a reason that is not blank, at the conductor too (an RPC caller is not
always our CLI): refused with nothing recorded, never taken for "no hold"."""

import pytest

from tests import fixtures as vfix
from vmmig.conductor import rpcapi
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception


@pytest.fixture
def cloud():
    fixture = vfix.EmbeddedFixture()
    fixture.setUp()
    yield rpcapi.ConductorAPI(context=vcontext.new('tester', ['admin']))
    fixture.cleanUp()


@pytest.mark.parametrize('reason', ['', '   ', '\t'])
def test_migrate_with_a_blank_hold_records_nothing(cloud, reason):
    before = db.dump()
    with pytest.raises(exception.Invalid) as err:
        cloud.migrate_server('legacy-1', 'cold', hold_reason=reason)
    assert 'needs a reason that is not blank' in str(err.value)
    assert db.dump()['migrations'] == before['migrations'] == []
    assert db.instance_get('legacy-1')['host'] == 'sim-b'


def test_hold_reason_recorded_without_its_blanks(cloud):
    held = cloud.migrate_server('legacy-1', 'cold', hold_reason='  window  ')
    assert (held['state'], held['hold_reason']) == (states.HELD, 'window')


@pytest.mark.parametrize('reason', ['', '  '])
def test_hold_verb_refuses_a_blank_reason(cloud, reason):
    held = cloud.migrate_server('legacy-1', 'cold', hold_reason='window')
    # The reason is looked at first: refused for it, not for the state.
    with pytest.raises(exception.Invalid) as err:
        cloud.migration_hold(held['id'], reason)
    assert 'needs a reason that is not blank' in str(err.value)
    assert cloud.migration_get(held['id'])['hold_reason'] == 'window'
