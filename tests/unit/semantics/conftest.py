"""A small simulated cluster per test, run in-process, and ways to look at it."""

import pytest

from tests.unit.semantics import helpers


@pytest.fixture
def make_cloud():
    """``make_cloud(cluster, **conf overrides)`` -> a started helpers.Cloud."""
    clouds = []

    def factory(cluster, **overrides):
        cloud = helpers.Cloud(cluster, **overrides)
        clouds.append(cloud)
        cloud.start()
        return cloud

    yield factory
    for cloud in reversed(clouds):
        cloud.stop()
