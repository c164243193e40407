"""Session-scoped pytest fixtures for real OpenStack services (tests/openstack)."""

import pytest

from tests import fixtures
from tests.openstack import nova


@pytest.fixture(scope='session')
def nova_cloud(request):
    """Real Nova with three compute hosts: nova-a and nova-b finish a live migration at
    once (fake.FakeDriver), nova-live keeps one running until it is aborted or forced
    to complete (fake.FakeLiveMigrateDriver)."""
    why = nova.venv_missing()
    if why:
        fixtures.service_missing('Nova', why)
    keystone = _keystone(request)
    cloud = nova.NovaCloud(computes={'nova-a': nova.FAKE, 'nova-b': nova.FAKE,
                                     'nova-live': nova.FAKE_LIVE}, keystone=keystone)
    cloud.start()
    yield cloud
    cloud.stop()


def _keystone(request):
    # Until the Keystone fixture is there, Nova trusts the identity headers sent to it.
    try:
        return request.getfixturevalue('keystone')
    except pytest.FixtureLookupError:
        return None
