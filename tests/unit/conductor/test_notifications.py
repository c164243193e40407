"""A migration's start notification leaves in the background, and still first."""

from concurrent import futures
import threading
import time

from vmmig.conductor import context


class _SlowBroker(object):
    """A notifier whose first send is slow, as a busy broker's can be."""

    def __init__(self):
        self.sent = []
        self.lock = threading.Lock()

    def _send(self, kind, event_type, payload):
        if not self.sent and event_type.endswith('.start'):
            time.sleep(0.2)
        with self.lock:
            self.sent.append((kind, event_type, payload['state']))

    def info(self, ctxt, event_type, payload):
        self._send('info', event_type, payload)

    def error(self, ctxt, event_type, payload):
        self._send('error', event_type, payload)


def _context(broker, sender):
    record = {'id': 7, 'migration_type': 'live', 'state': 'preparing'}
    return context.MigrationContext(record, storage=None, notifier=broker, agents=object(),
                                    sender=sender)


def test_start_goes_in_the_background_and_before_the_end():
    broker = _SlowBroker()
    with futures.ThreadPoolExecutor(1) as sender:
        ctx = _context(broker, sender)
        began = time.monotonic()
        ctx.notify_soon('start')
        assert time.monotonic() - began < 0.1  # the migration did not wait for it
        # The record moves on meanwhile: the start notification shows it as it was.
        ctx.migration = dict(ctx.migration, state='completed')
        ctx.notify('end')
    assert broker.sent == [('info', 'vmmig.migration.live.start', 'preparing'),
                           ('info', 'vmmig.migration.live.end', 'completed')]


def test_an_error_also_waits_for_the_start():
    broker = _SlowBroker()
    with futures.ThreadPoolExecutor(1) as sender:
        ctx = _context(broker, sender)
        ctx.notify_soon('start')
        ctx.migration = dict(ctx.migration, state='failed')
        ctx.notify('error')
    assert [s[:2] for s in broker.sent] == [('info', 'vmmig.migration.live.start'),
                                            ('error', 'vmmig.migration.live.error')]


def test_without_a_sender_it_is_sent_at_once():
    broker = _SlowBroker()
    ctx = _context(broker, None)
    ctx.notify_soon('start')
    assert broker.sent == [('info', 'vmmig.migration.live.start', 'preparing')]
