"""Progress reports: at most one per interval, the last always, never the same twice."""

from vmmig.hypervisor import monitor


def _limited(interval):
    sent = []
    return monitor.RateLimited(sent.append, interval), sent


def test_the_first_goes_and_the_next_wait_for_the_interval():
    progress, sent = _limited(3600.0)
    progress({'data_remaining': 3})
    progress({'data_remaining': 2})
    assert sent == [{'data_remaining': 3}]


def test_the_last_goes_whatever_the_interval():
    progress, sent = _limited(3600.0)
    progress({'data_remaining': 3})
    progress({'data_remaining': 2})
    progress({'data_remaining': 0, 'downtime': 40}, final=True)
    assert sent == [{'data_remaining': 3}, {'data_remaining': 0, 'downtime': 40}]


def test_the_last_is_not_sent_again_when_nothing_changed():
    # A job that ended between two polls: the report of the poll is already the last.
    progress, sent = _limited(3600.0)
    progress({'data_remaining': 0, 'downtime': 40})
    progress({'data_remaining': 0, 'downtime': 40}, final=True)
    assert sent == [{'data_remaining': 0, 'downtime': 40}]


def test_without_an_interval_every_call_goes():
    progress, sent = _limited(0.0)
    for remaining in (3, 2, 1):
        progress({'data_remaining': remaining})
    assert [s['data_remaining'] for s in sent] == [3, 2, 1]
