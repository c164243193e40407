"""pytest fixtures for the OpenStack services the functional tests talk to (a real Keystone)."""

import pytest

from tests import fixtures
from tests.openstack import keystone as keystone_mod
from tests.openstack import nova as nova_mod


@pytest.fixture(scope='session')
def keystone(request):
    """One real Keystone for the whole test session (tests.openstack.keystone.Keystone).

    Skips when tools/openstack/setup-keystone.sh has not installed it (a failure under
    VMMIG_REQUIRE_SERVICES=1, see tests/functional/conftest.py).
    """
    if not keystone_mod.installed():
        pytest.skip('Keystone is not installed in %s: run tools/openstack/setup-keystone.sh'
                    % keystone_mod.DEFAULT_VENV)
    server = keystone_mod.Keystone()
    try:
        server.start()
    except keystone_mod.DatabaseUnavailable as e:
        fixtures.service_missing('the database for Keystone', e)
    _say(request.config, 'keystone start s %.1f (%s, log %s)'
         % (server.start_seconds, server.auth_url, server.log_path))
    yield server
    server.stop()


def _say(config, line):
    """A line on pytest's terminal, past its output capture."""
    reporter = config.pluginmanager.get_plugin('terminalreporter')
    capture = config.pluginmanager.get_plugin('capturemanager')
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope='session')
def nova_cloud(request, keystone):
    """Real Nova (tests.openstack.nova.NovaCloud) behind the session's Keystone, with three
    compute hosts: nova-a and nova-b finish a live migration at once (Nova's FakeDriver,
    with a stable node identity so a killed one can start again), nova-live keeps one
    running until it is aborted or forced to complete (fake.FakeLiveMigrateDriver).

    Skips when tools/openstack/setup-nova.sh has not installed it (a failure under
    VMMIG_REQUIRE_SERVICES=1).
    """
    why = nova_mod.venv_missing()
    if why:
        pytest.skip(why)
    cloud = nova_mod.NovaCloud(computes={'nova-a': nova_mod.FAKE, 'nova-b': nova_mod.FAKE,
                                         'nova-live': nova_mod.FAKE_LIVE}, keystone=keystone)
    cloud.start()
    _say(request.config, 'nova start s %.1f (%s, logs in %s)'
         % (cloud.start_seconds, cloud.api_url, cloud.workdir))
    yield cloud
    cloud.stop()
