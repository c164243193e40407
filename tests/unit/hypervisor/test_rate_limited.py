"""Progress reports: at most one per interval."""

from vmmig.hypervisor import monitor


def _limited(interval):
    sent = []
    return monitor.RateLimited(sent.append, interval), sent


def test_the_first_goes_and_the_next_wait_for_the_interval():
    progress, sent = _limited(3600.0)
    progress({'data_remaining': 3})
    progress({'data_remaining': 2})
    assert sent == [{'data_remaining': 3}]


def test_the_first_goes_on_a_machine_up_for_less_than_an_interval(monkeypatch):
    # The monotonic clock starts near 0 at boot.
    monkeypatch.setattr(monitor.time, 'monotonic', lambda: 5.0)
    progress, sent = _limited(3600.0)
    progress({'data_remaining': 3})
    assert sent == [{'data_remaining': 3}]


def test_without_an_interval_every_call_goes():
    progress, sent = _limited(0.0)
    for remaining in (3, 2, 1):
        progress({'data_remaining': remaining})
    assert [s['data_remaining'] for s in sent] == [3, 2, 1]
