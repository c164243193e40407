"""A small simulated cluster per test, run in-process, and ways to look at it."""

import time
import types

from futurist import _thread as futurist_thread
from oslo_messaging._drivers import impl_fake
import pytest

from tests.unit.semantics import helpers


@pytest.fixture(autouse=True)
def quick_in_process_transport(monkeypatch):
    """The in-process transport polls its queues every 50 ms and its RPC servers take a
    second to stop; these tests make hundreds of calls and start dozens of services.
    Only the pace changes, not what happens."""
    monkeypatch.setattr(impl_fake, 'time', types.SimpleNamespace(
        time=time.time, sleep=lambda seconds: time.sleep(min(seconds, 0.005))))
    monkeypatch.setattr(futurist_thread.ThreadWorker, 'MAX_IDLE_FOR', 0.1)


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
