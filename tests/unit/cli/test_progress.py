"""The --wait progress bar: what it says, when it shows, when the wait ends."""

import io

from tests.unit.cli import FakeConductor
from tests.unit.cli import run
from tests.unit.cli import TTY
from vmmig.cli import progress
from vmmig.db import states

MiB = 1024 * 1024

SCRIPT = {'web-1': [
    {'state': states.RUNNING, 'bytes_total': 4096 * MiB, 'bytes_processed': 1024 * MiB,
     'bytes_remaining': 3072 * MiB, 'dirty_rate': 80 * MiB, 'iteration': 1},
    {'state': states.COMPLETED, 'bytes_processed': 4600 * MiB, 'bytes_remaining': 0,
     'downtime_ms': 16}]}


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class TestMigrationBar:
    def bar(self, clock):
        return progress.MigrationBar({'id': 3, 'instance': 'web-1'}, io.StringIO(),
                                     enabled=False, clock=clock)

    def test_eta_from_the_observed_rate(self):
        clock = Clock()
        bar = self.bar(clock)
        bar.update({'state': states.RUNNING, 'bytes_processed': 0,
                    'bytes_remaining': 1000 * MiB})
        assert bar.eta({'state': states.RUNNING, 'bytes_remaining': 1000 * MiB}) is None
        clock.now = 2.0
        record = {'state': states.RUNNING, 'bytes_processed': 200 * MiB,
                  'bytes_remaining': 600 * MiB}
        bar.update(record)
        assert bar.rate == 100 * MiB
        assert bar.eta(record) == 6.0
        assert bar.bar.total == 800 * MiB  # sent + left: pre-copy resends pages
        assert bar.bar.n == 200 * MiB

    def test_no_eta_once_settled(self):
        clock = Clock()
        bar = self.bar(clock)
        bar.update({'state': states.RUNNING, 'bytes_processed': 0, 'bytes_remaining': 10})
        clock.now = 1.0
        bar.update({'state': states.HELD, 'bytes_processed': 5, 'bytes_remaining': 5})
        assert bar.eta({'state': states.HELD, 'bytes_remaining': 5}) is None

    def test_description(self):
        bar = self.bar(Clock())
        text = bar.describe({'state': states.FAILED, 'bytes_total': 4096 * MiB,
                             'bytes_remaining': 512 * MiB, 'dirty_rate': 80 * MiB,
                             'iteration': 3, 'reason': 'link lost'})
        assert text == ('failed, RAM+disk 4.00GB, 512MB left, dirtying 80.0MB/s, '
                        'iteration 3, link lost')


class TestWait:
    def test_polls_until_every_one_settles(self):
        api = FakeConductor(script={'a': [{'state': states.RUNNING},
                                          {'state': states.COMPLETED}],
                                    'b': [{'state': states.RUNNING}, {'state': states.RUNNING},
                                          {'state': states.FAILED}]})
        first = api.migrate_server('a', 'live')
        second = api.migrate_server('b', 'live')
        sleeps = []
        records = progress.wait(api, [first['id'], second['id']], io.StringIO(), False,
                                interval=0.25, sleep=sleeps.append)
        assert [r['state'] for r in records] == [states.COMPLETED, states.FAILED]
        assert sleeps == [0.25, 0.25]
        assert progress.unsuccessful(records) == [records[1]]


class TestBarVisibility:
    def test_shown_on_a_terminal(self, tmp_path):
        result = run(['server', 'migrate', '--live-migration', '--wait', 'web-1'],
                     FakeConductor(script=SCRIPT), tmp_path, stderr=TTY())
        assert result.code == 0
        assert 'web-1 [1]: ' in result.stderr
        assert '4.49GB sent' in result.stderr
        assert '100%|' in result.stderr
        assert 'completed' in result.stderr
        assert 'downtime 16 ms' in result.stderr

    def test_hidden_with_json(self, tmp_path):
        result = run(['server', 'migrate', '--live-migration', '--wait', '-f', 'json',
                      'web-1'], FakeConductor(script=SCRIPT), tmp_path, stderr=TTY())
        assert result.code == 0
        assert result.stderr == ''

    def test_hidden_when_stderr_is_not_a_terminal(self, tmp_path):
        result = run(['server', 'migrate', '--live-migration', '--wait', 'web-1'],
                     FakeConductor(script=SCRIPT), tmp_path)
        assert result.code == 0
        assert result.stderr == ''
