"""The CLI's arguments are checked before anything is sent, within the conductor's bounds."""

import pytest

from tests.unit.cli import FakeConductor
from tests.unit.cli import run
from vmmig.db import models
from vmmig import exception
from vmmig import limits
from vmmig.migration import live

REFUSED = [
    ('id-too-large', ['migration', 'show', str(10 ** 30)], 'out of range (1 to 2147483647)'),
    ('id-zero', ['migration', 'show', '0'], 'out of range'),
    ('id-superscript', ['migration', 'abort', '\u00b2'], 'neither a migration id'),
    ('id-arabic-digits', ['migration', 'resume', '\u0663'], 'neither a migration id'),
    ('id-word', ['migration', 'show', 'latest'], 'neither a migration id'),
    ('vm-newline', ['server', 'migrate', 'web-1\nweb-2'], 'control characters (U+000A)'),
    ('vm-blank', ['server', 'migrate', ' '], 'must not be blank'),
    ('host-escape', ['server', 'migrate', '--host', 'sim-b\x1b[2J', 'web-1'],
     'control characters (U+001B)'),
    ('evacuate-host', ['server', 'evacuate', '--host', 'a\rb'], 'control characters'),
    ('eligible-vm', ['host', 'eligible', 'a\nb'], 'control characters'),
    ('list-vm', ['migration', 'list', '--instance', 'a\tb'], 'control characters'),
    ('vm-path', ['server', 'migrate', '../../etc/x'], 'must not contain "/"'),
    ('vm-option', ['migration', 'list', '--instance=-rf'], "must not start with '-'"),
    ('host-non-ascii', ['host', 'eligible', 'caf\u00e9-1'], "must not contain '\u00e9'"),
    ('reason-too-long', ['migration', 'hold', '1', '--reason', 'x' * 10000],
     'at most 255 characters; this one has 10000'),
    ('reason-blank', ['migration', 'hold', '1', '--reason', '  '],
     'needs a reason that is not blank'),
    ('hold-too-long', ['server', 'migrate', '--hold', 'y' * 256, 'web-1'], 'at most 255'),
    ('bandwidth-unbounded', ['server', 'migrate', '--live-migration', '--bandwidth',
                             str(limits.BANDWIDTH_MIBPS_MAX + 1), 'web-1'],
     'not a whole number from 1 to %d' % limits.BANDWIDTH_MIBPS_MAX),
    ('downtime-unbounded', ['server', 'migrate', '--live-migration', '--max-downtime',
                            '2000001', 'web-1'], 'not a whole number from 1 to 2000000'),
    ('downtime-negative', ['server', 'migrate', '--max-downtime', '-5', 'web-1'],
     'not a whole number'),
]


@pytest.mark.parametrize('argv,fragment', [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_bad_argument_is_refused_before_anything_is_sent(tmp_path, capsys, argv, fragment):
    api = FakeConductor()
    api.migrate_server('web-1', 'cold', hold_reason='first')  # migration 1, held
    api.calls = []
    with pytest.raises(SystemExit) as err:
        run(argv, api, tmp_path)
    assert err.value.code == 2
    assert fragment in capsys.readouterr().err
    assert api.calls == []


ACCEPTED = [
    (['migration', 'show', str(limits.MIGRATION_ID_MAX)], 'migration_get',
     (str(limits.MIGRATION_ID_MAX),)),
    (['migration', 'show', '007'], 'migration_get', ('7',)),
    (['migration', 'show', '0000000A-0000-4000-8000-000000000001'], 'migration_get',
     ('0000000a-0000-4000-8000-000000000001',)),
    (['migration', 'hold', '1', '--reason', 'r' * 255], 'migration_hold', ('1', 'r' * 255)),
    (['host', 'eligible', 'instance-0000001a'], 'host_eligible', ('instance-0000001a', 'cold')),
    (['migration', 'list', '--host', 'compute-1.example.org'], 'migration_list', ()),
]


@pytest.mark.parametrize('argv,verb,args', ACCEPTED)
def test_a_good_argument_reaches_the_conductor(tmp_path, argv, verb, args):
    api = FakeConductor()
    api.migrate_server('web-1', 'cold')  # migration 1, queued
    run(argv, api, tmp_path)
    assert api.called(verb)[0][1] == args


def test_the_largest_bandwidth_and_downtime_pass_both_checks(tmp_path):
    api = FakeConductor()
    result = run(['server', 'migrate', '--live-migration', '--bandwidth',
                  str(limits.BANDWIDTH_MIBPS_MAX), '--max-downtime', '2000000', '-f', 'json',
                  'web-1'], api, tmp_path)
    assert result.code == 0, result.stderr
    options = api.called('migrate_server')[0][2]['options']
    assert live.LiveMigration().validate_options(options) == options


@pytest.mark.parametrize('option,value', [
    ('bandwidth', limits.BANDWIDTH_MIBPS_MAX + 1), ('max_downtime', 2000001),
    ('max_downtime', 10 ** 30), ('downtime_steps', 2 ** 31), ('completion_timeout', 0)])
def test_the_conductor_holds_the_same_bounds(option, value):
    with pytest.raises(exception.InvalidOption, match='must be a whole number from 1 to'):
        live.LiveMigration().validate_options({option: value})


def test_the_reason_bound_is_the_column():
    assert models.Migration.__table__.c.hold_reason.type.length == limits.HOLD_REASON_MAX
    assert models.Migration.__table__.c.id.type.__class__.__name__ == 'Integer'
