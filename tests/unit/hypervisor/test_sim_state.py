"""Two processes driving one simulated host (two embedded CLI commands at once) keep
each other's changes: every change is made on the state file as it is now."""

import json
import multiprocessing
import os

import pytest

from tests import fixtures as vfix
from vmmig import conf
from vmmig.hypervisor.sim import driver as sim_driver

CONF = conf.CONF


@pytest.fixture
def state_path():
    fixture = vfix.ConfFixture()
    fixture.setUp()
    yield fixture.state_path
    fixture.cleanUp()


def _driver(host='sim-a'):
    driver = sim_driver.SimDriver(CONF, host)
    driver.init_host()
    return driver


def _saved(state_path, host='sim-a'):
    with open(os.path.join(state_path, 'sim', 'hosts', host + '.json')) as f:
        return json.load(f)


def test_a_change_builds_on_the_other_drivers_change(state_path):
    first, second = _driver(), _driver()
    first.undefine('db-1', delete_local_files=True)
    # The second copy was loaded before db-1 went: it must not bring it back.
    second.suspend('app-1')
    saved = _saved(state_path)['instances']
    assert 'db-1' not in saved
    assert saved['app-1']['power_state'] == 'suspended'
    assert saved['web-1']['power_state'] == 'running'
    # Reads see the other's changes too.
    assert 'db-1' not in [i['name'] for i in second.list_instances()]
    assert first.get_instance('app-1')['power_state'] == 'suspended'
    assert second.host_facts()['vcpus_used'] == first.host_facts()['vcpus_used']


def _connect_many(prefix, count):
    driver = _driver()
    for n in range(count):
        driver.connect_volumes({'name': '%s-%d' % (prefix, n), 'disks': [
            {'name': 'vdb', 'location': 'volume', 'volume': '%s-%d' % (prefix, n),
             'size_gb': 1}]})


def test_processes_at_once_lose_no_update(state_path):
    _driver()
    context = multiprocessing.get_context('fork')
    workers = [context.Process(target=_connect_many, args=(p, 40)) for p in 'xyz']
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    volumes = _saved(state_path)['volumes']
    assert {v for v in volumes if v[0] in 'xyz'} == {
        '%s-%d' % (p, n) for p in 'xyz' for n in range(40)}
    assert not os.path.exists(os.path.join(state_path, 'sim', 'hosts', 'sim-a.json.tmp'))
