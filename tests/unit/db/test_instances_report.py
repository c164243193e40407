"""Agents' reports of their VMs: which host an instance row names."""

import pytest

from tests import fixtures as vfix
from vmmig.db import api as db
from vmmig.db import schema


@pytest.fixture
def database():
    conf = vfix.ConfFixture()
    conf.setUp()
    schema.sync()
    yield
    conf.cleanUp()


def _vm(power_state):
    return {'name': 'vm', 'power_state': power_state, 'storage_mode': 'ephemeral-shared',
            'disks': []}


def test_a_stopped_copy_does_not_take_the_vm_from_where_it_runs(database):
    db.instances_report('b', [_vm('running')], reported_at=100.0)
    # The source of a migration whose clean-up failed still defines a stopped copy.
    db.instances_report('a', [_vm('shutoff')], reported_at=200.0)
    row = db.instance_get('vm')
    assert (row['host'], row['power_state']) == ('b', 'running')


def test_a_running_copy_takes_the_vm_from_a_stopped_one(database):
    db.instances_report('a', [_vm('shutoff')], reported_at=100.0)
    db.instances_report('b', [_vm('running')], reported_at=200.0)
    assert db.instance_get('vm')['host'] == 'b'


def test_a_vm_that_stops_where_it_runs_is_reported_stopped(database):
    db.instances_report('b', [_vm('running')], reported_at=100.0)
    db.instances_report('b', [_vm('shutoff')], reported_at=200.0)
    row = db.instance_get('vm')
    assert (row['host'], row['power_state']) == ('b', 'shutoff')
