"""Arguments -> RPC calls, records -> output, failures -> exit codes."""

import json
import sys

import oslo_messaging
from oslo_messaging._drivers import common as messaging_common
import pytest

from tests.unit.cli import FakeConductor
from tests.unit.cli import FakeServices
from tests.unit.cli import run
from vmmig.db import states
from vmmig import exception


@pytest.fixture
def api():
    return FakeConductor()


def call(api, name):
    calls = api.called(name)
    assert len(calls) == 1, api.calls
    return calls[0][1], calls[0][2]


class TestServerMigrate:
    def test_live_with_every_option(self, api, tmp_path):
        result = run(['server', 'migrate', '--live-migration', '--host', 'sim-b',
                      '--max-downtime', '300', '--bandwidth', '100', '--auto-converge',
                      '--post-copy', '-f', 'json', 'web-1'], api, tmp_path)
        assert result.code == 0, result.stderr
        args, kwargs = call(api, 'migrate_server')
        assert args == ('web-1',)
        assert kwargs['migration_type'] == 'live'
        assert kwargs['host'] == 'sim-b'
        assert kwargs['hold_reason'] is None
        assert kwargs['options'] == {'max_downtime': 300, 'bandwidth': 100,
                                     'auto_converge': True, 'post_copy': True}
        shown = json.loads(result.stdout)
        assert shown['id'] == 1
        assert shown['instance'] == 'web-1'
        assert shown['state'] == states.QUEUED
        assert shown['options'] == {'max_downtime': 300, 'bandwidth': 100,
                                    'auto_converge': True, 'post_copy': True}
        assert shown['created_at'] == 1700000000.0  # machine output keeps the number

    def test_cold_by_default_only_given_options(self, api, tmp_path):
        result = run(['server', 'migrate', '--shutdown', '--hold', 'window at 22:00',
                      '-f', 'json', 'legacy-1'], api, tmp_path)
        assert result.code == 0, result.stderr
        args, kwargs = call(api, 'migrate_server')
        assert kwargs['migration_type'] == 'cold'
        assert kwargs['host'] is None
        assert kwargs['options'] == {'shutdown': True}
        assert kwargs['hold_reason'] == 'window at 22:00'
        assert json.loads(result.stdout)['state'] == states.HELD

    def test_no_options(self, api, tmp_path):
        assert run(['server', 'migrate', 'legacy-1'], api, tmp_path).code == 0
        assert call(api, 'migrate_server')[1]['options'] == {}

    def test_table_shows_times_as_iso(self, api, tmp_path):
        result = run(['server', 'migrate', 'legacy-1'], api, tmp_path)
        assert '2023-11-14T22:13:20+00:00' in result.stdout

    def test_wait_follows_to_completion(self, tmp_path):
        api = FakeConductor(script={'web-1': [
            {'state': states.PREPARING},
            {'state': states.RUNNING, 'bytes_total': 4096, 'bytes_processed': 1024,
             'bytes_remaining': 3072, 'dirty_rate': 100, 'iteration': 1},
            {'state': states.COMPLETED, 'bytes_processed': 5000, 'bytes_remaining': 0,
             'downtime_ms': 20}]})
        result = run(['server', 'migrate', '--live-migration', '--wait', '-f', 'json',
                      'web-1'], api, tmp_path)
        assert result.code == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown['state'] == states.COMPLETED
        assert shown['downtime_ms'] == 20
        assert len(api.called('migration_get')) == 3
        assert result.stderr == ''  # no bar: not a terminal, and json

    @pytest.mark.parametrize('end', [states.FAILED, states.CANCELLED, states.ERROR])
    def test_wait_exit_code_when_it_ends_badly(self, end, tmp_path):
        api = FakeConductor(script={'web-1': [
            {'state': states.RUNNING}, {'state': end, 'reason': 'link lost'}]})
        result = run(['server', 'migrate', '--live-migration', '--wait', '-f', 'json',
                      'web-1'], api, tmp_path)
        assert result.code == 1
        assert json.loads(result.stdout)['state'] == end

    def test_wait_stops_at_held(self, api, tmp_path):
        result = run(['server', 'migrate', '--hold', 'later', '--wait', '-f', 'json',
                      'web-1'], api, tmp_path)
        assert result.code == 0
        assert json.loads(result.stdout)['state'] == states.HELD
        assert len(api.called('migration_get')) == 1

    def test_bad_integer_is_a_usage_error(self, api, tmp_path):
        with pytest.raises(SystemExit) as exit_:
            run(['server', 'migrate', '--max-downtime', 'soon', 'web-1'], api, tmp_path)
        assert exit_.value.code == 2
        assert api.calls == []


class TestServerEvacuate:
    def test_mapping_and_list(self, api, tmp_path):
        result = run(['server', 'evacuate', '--host', 'sim-a', '--target-host', 'sim-c',
                      '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        args, kwargs = call(api, 'evacuate_host')
        assert args == ('sim-a',)
        assert kwargs['target_host'] == 'sim-c'
        rows = json.loads(result.stdout)
        assert [r['Instance'] for r in rows] == ['web-1', 'db-1']
        assert {r['Type'] for r in rows} == {'evacuate'}

    def test_wait_on_all(self, tmp_path):
        api = FakeConductor(script={'db-1': [{'state': states.FAILED,
                                              'reason': 'no room'}]})
        result = run(['server', 'evacuate', '--host', 'sim-a', '--wait', '-f', 'json'],
                     api, tmp_path)
        assert result.code == 1
        assert [r['State'] for r in json.loads(result.stdout)] == [states.COMPLETED,
                                                                   states.FAILED]

    def test_host_is_required(self, api, tmp_path):
        with pytest.raises(SystemExit):
            run(['server', 'evacuate'], api, tmp_path)


class TestMigrationCommands:
    def test_list_filters(self, api, tmp_path):
        api.migrate_server('web-1', 'live')
        api.migrate_server('db-1', 'live', hold_reason='later')
        result = run(['migration', 'list', '--state', 'held', '--instance', 'db-1',
                      '--host', 'sim-a', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert call(api, 'migration_list')[1] == {'state': 'held', 'instance': 'db-1',
                                                  'host': 'sim-a'}
        rows = json.loads(result.stdout)
        assert rows == [{'ID': 2, 'UUID': rows[0]['UUID'], 'Instance': 'db-1',
                         'Type': 'live', 'Storage Mode': 'ephemeral-shared',
                         'Source Host': 'sim-a', 'Dest Host': 'sim-b', 'State': 'held',
                         'Reason': 'held: later'}]

    def test_list_rejects_unknown_state(self, api, tmp_path):
        with pytest.raises(SystemExit):
            run(['migration', 'list', '--state', 'sleeping'], api, tmp_path)

    @pytest.mark.parametrize('ident', ['1', '00000000-0000-4000-8000-000000000001'])
    def test_show_passes_the_id_as_given(self, api, ident, tmp_path):
        api.migrate_server('web-1', 'live')
        result = run(['migration', 'show', '-f', 'json', ident], api, tmp_path)
        assert result.code == 0, result.stderr
        assert call(api, 'migration_get')[0] == (ident,)
        assert json.loads(result.stdout)['instance'] == 'web-1'

    def test_hold_resume_abort(self, api, tmp_path):
        api.migrate_server('web-1', 'live')
        result = run(['migration', 'hold', '1', '--reason', 'freeze', '-f', 'json'],
                     api, tmp_path)
        assert result.code == 0, result.stderr
        args, kwargs = call(api, 'migration_hold')
        assert args == ('1', 'freeze')
        assert json.loads(result.stdout)['state'] == states.HELD

        result = run(['migration', 'resume', '1', '-f', 'json'], api, tmp_path)
        assert call(api, 'migration_resume')[0] == ('1',)
        assert json.loads(result.stdout)['state'] == states.QUEUED

        result = run(['migration', 'abort', '1', '-f', 'json'], api, tmp_path)
        assert call(api, 'migration_abort')[0] == ('1',)
        assert json.loads(result.stdout)['state'] == states.CANCELLED

    def test_resume_wait(self, api, tmp_path):
        api.migrate_server('web-1', 'live', hold_reason='later')
        result = run(['migration', 'resume', '--wait', '1', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)['state'] == states.COMPLETED

    def test_a_resumed_migration_is_not_said_to_be_held(self, api, tmp_path):
        api.migrate_server('web-1', 'live', hold_reason='change window',
                           requested_by='alice')
        api.migrations[1]['held_by'] = 'alice'
        result = run(['migration', 'list', '-f', 'json'], api, tmp_path)
        assert json.loads(result.stdout)[0]['Reason'] == 'held: change window'
        result = run(['migration', 'resume', '--wait', '1', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown['state'] == states.COMPLETED
        # The hold is history: told as such, apart from the outcome.
        assert (shown['past_hold_reason'], shown['past_held_by']) == ('change window',
                                                                      'alice')
        assert 'hold_reason' not in shown and 'held_by' not in shown
        result = run(['migration', 'list', '-f', 'json'], api, tmp_path)
        [row] = json.loads(result.stdout)
        assert (row['State'], row['Reason']) == (states.COMPLETED, '')
        result = run(['migration', 'show', '1'], api, tmp_path)
        assert 'held:' not in result.stdout and 'past_hold_reason' in result.stdout

    def test_abort_wait_of_held(self, api, tmp_path):
        api.migrate_server('web-1', 'live', hold_reason='later')
        result = run(['migration', 'abort', '--wait', '1', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)['state'] == states.CANCELLED

    def test_force_complete(self, api, tmp_path):
        api.migrate_server('web-1', 'live')
        api.migrations[1]['state'] = states.RUNNING
        result = run(['migration', 'force-complete', '1', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert call(api, 'migration_force_complete')[0] == ('1',)

    def test_hold_needs_a_reason(self, api, tmp_path):
        with pytest.raises(SystemExit):
            run(['migration', 'hold', '1'], api, tmp_path)

    @pytest.mark.parametrize('reason', ['', '   ', '\t\n'])
    def test_hold_refuses_a_blank_reason(self, api, tmp_path, capsys, reason):
        api.migrate_server('web-1', 'live')
        api.calls = []
        # Refused by the argument's type, the conductor's own check, before anything is sent.
        with pytest.raises(SystemExit) as exit_:
            run(['migration', 'hold', '1', '--reason', reason], api, tmp_path)
        assert exit_.value.code == 2
        assert 'needs a reason that is not blank' in capsys.readouterr().err
        assert api.called('migration_hold') == []
        assert api.migrations[1]['state'] == states.QUEUED


class TestHostCommands:
    def test_list(self, tmp_path):
        api = FakeConductor(hosts=[
            {'name': 'sim-a', 'state': 'up', 'maintenance': False,
             'last_heartbeat': 1700000090.0,
             'facts': {'vcpus': 32, 'vcpus_used': 8, 'memory_mb': 65536,
                       'memory_mb_used': 16384, 'cluster': 'c1'}},
            {'name': 'sim-d', 'state': 'down', 'maintenance': True,
             'maintenance_reason': 'firmware', 'last_heartbeat': None, 'facts': {}}])
        result = run(['host', 'list', '-f', 'json'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout) == [
            {'Name': 'sim-a', 'State': 'up', 'Maintenance': False,
             'vCPUs (used/total)': '8/32', 'Memory MB (used/total)': '16384/65536',
             'Cluster': 'c1', 'Heartbeat Age (s)': 10.0, 'Drain': ''},
            {'Name': 'sim-d', 'State': 'down', 'Maintenance': True,
             'vCPUs (used/total)': '0/?', 'Memory MB (used/total)': '0/?',
             'Cluster': None, 'Heartbeat Age (s)': None, 'Drain': ''}]
        table = run(['host', 'list'], api, tmp_path).stdout
        assert 'yes (firmware)' in table

    def test_eligible(self, tmp_path):
        api = FakeConductor(eligible=[
            {'host': 'sim-b', 'eligible': True, 'reasons': []},
            {'host': 'sim-d', 'eligible': False,
             'reasons': ['cluster of sim-d is c2', 'no shared storage']}])
        result = run(['host', 'eligible', '--live-migration', 'web-1', '-f', 'json'],
                     api, tmp_path)
        assert result.code == 0, result.stderr
        assert call(api, 'host_eligible')[0] == ('web-1', 'live')
        assert json.loads(result.stdout) == [
            {'Host': 'sim-b', 'Eligible': True, 'Reasons': ''},
            {'Host': 'sim-d', 'Eligible': False,
             'Reasons': 'cluster of sim-d is c2; no shared storage'}]
        run(['host', 'eligible', 'web-1'], api, tmp_path)
        assert api.called('host_eligible')[1][1] == ('web-1', 'cold')


def remote(exc):
    """``exc`` as oslo.messaging hands it to a client over a real transport."""
    try:
        raise exc
    except Exception:
        data = messaging_common.serialize_remote_exception(sys.exc_info())
    return messaging_common.deserialize_remote_exception(data, ['vmmig.exception'])


class Raising(FakeConductor):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def migration_get(self, migration):
        raise self.exc


class TestErrors:
    def test_precheck_failure_is_one_line_with_every_reason(self, tmp_path):
        api = FakeConductor(refuse={'gpu-1': ['PCI passthrough', 'other cluster']})
        result = run(['server', 'migrate', '--live-migration', 'gpu-1'], api, tmp_path)
        assert result.code == 1
        assert result.stdout == ''
        assert result.stderr == ('Migration of gpu-1 refused: PCI passthrough; '
                                 'other cluster\n')

    @pytest.mark.parametrize('exc, message', [
        (remote(exception.MigrationNotFound(migration='42')),
         'Migration 42 could not be found.'),
        (remote(exception.PrecheckFailed(instance='gpu-1', reasons=['a', 'b'])),
         'Migration of gpu-1 refused: a; b'),
        (oslo_messaging.MessagingTimeout('Timed out waiting for a reply'),
         'The conductor did not answer in time; is vmmig-conductor running? '
         '(Timed out waiting for a reply)'),
        (RuntimeError('boom\nsecond line'), 'boom'),
    ])
    def test_remote_and_other_errors(self, exc, message, tmp_path):
        result = run(['migration', 'show', '42'], Raising(exc), tmp_path)
        assert result.code == 1
        assert result.stderr == message + '\n'
        assert 'Traceback' not in result.stderr

    def test_debug_shows_the_traceback(self, tmp_path):
        result = run(['--debug', 'migration', 'show', '42'],
                     Raising(exception.MigrationNotFound(migration='42')), tmp_path)
        assert result.code == 1
        assert 'Traceback' in result.stderr

    def test_invalid_state(self, api, tmp_path):
        api.migrate_server('web-1', 'live')
        api.migrations[1]['state'] = states.COMPLETED
        result = run(['migration', 'abort', '1'], api, tmp_path)
        assert result.code == 1
        assert result.stderr.startswith('Cannot abort migration 1 while it is completed')


class TestHoldReason:
    @pytest.mark.parametrize('reason', ['', '   '])
    def test_blank_hold_is_refused_before_anything_starts(self, api, tmp_path, capsys,
                                                          reason):
        with pytest.raises(SystemExit) as exit_:
            run(['server', 'migrate', '--shutdown', '--hold', reason, 'web-1'], api,
                tmp_path)
        assert exit_.value.code == 2
        assert ('argument --hold: a held migration needs a reason that is not blank'
                in capsys.readouterr().err)
        assert api.called('migrate_server') == []
        assert api.migrations == {}

    def test_reason_sent_without_its_blanks(self, api, tmp_path):
        result = run(['server', 'migrate', '--hold', '  change window ', 'web-1'], api,
                     tmp_path)
        assert result.code == 0, result.stderr
        assert call(api, 'migrate_server')[1]['hold_reason'] == 'change window'


class TestEmbedded:
    def setup_method(self):
        FakeServices.instances = []
        FakeServices.idle = True
        FakeServices.unfinished = FakeServices.queued_records = ()

    def teardown_method(self):
        FakeServices.idle = True
        FakeServices.unfinished = FakeServices.queued_records = ()

    @pytest.mark.parametrize('value', ['-1', '-0.5', 'nan', 'inf', 'soon'])
    def test_timeout_must_be_zero_or_more_seconds(self, api, tmp_path, value, capsys):
        with pytest.raises(SystemExit) as exit:
            run(['--embedded-timeout', value, 'migration', 'list'], api, tmp_path)
        assert exit.value.code == 2
        assert '--embedded-timeout' in capsys.readouterr().err
        assert FakeServices.instances == []

    def test_timeout_zero_is_allowed(self, api, tmp_path):
        result = run(['--embedded-timeout', '0', 'migration', 'list'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert FakeServices.instances[0].events == ['start', ('wait_idle', 0.0), 'stop']

    def test_what_still_runs_is_aborted_before_exit(self, api, tmp_path):
        FakeServices.idle = False
        FakeServices.unfinished = [dict(id=1, instance='web-1', state=states.CANCELLED,
                                        source_host='sim-a', vm_location='sim-a')]
        FakeServices.queued_records = [dict(id=2, instance='db-1', state=states.QUEUED)]
        result = run(['--embedded-timeout', '3', 'server', 'migrate', '--shutdown',
                      'web-1'], api, tmp_path)
        events = FakeServices.instances[0].events
        assert events[:2] == ['start', ('wait_idle', 3.0)]
        assert events[2][0] == 'abort_running' and '3.0 s' in events[2][1]
        assert events[3:] == ['stop']
        assert 'still running after 3.0 s' in result.stderr
        assert 'Migration 1 of web-1: cancelled; the VM is on sim-a.' in result.stderr
        assert 'Migration(s) 2 stay queued' in result.stderr
        # Cut short: the exit code says so.
        assert result.code == 1

    def test_services_start_once_and_drain_before_exit(self, api, tmp_path):
        result = run(['--embedded-timeout', '12', 'server', 'migrate', '--wait',
                      'web-1'], api, tmp_path)
        assert result.code == 0, result.stderr
        assert len(FakeServices.instances) == 1
        assert FakeServices.instances[0].events == ['start', ('wait_idle', 12.0), 'stop']
        assert result.app.services is None

    def test_not_with_a_transport_url(self, api, tmp_path):
        result = run(['host', 'list'], api, tmp_path, embedded=False)
        assert result.code == 0, result.stderr
        assert FakeServices.instances == []

    def test_not_for_help(self, api, tmp_path):
        result = run(['help', 'server', 'migrate'], api, tmp_path)
        assert result.code == 0
        assert '--live-migration' in result.stdout
        assert FakeServices.instances == []

    def test_stopped_after_an_error(self, tmp_path):
        result = run(['migration', 'show', '1'], FakeConductor(), tmp_path)
        assert result.code == 1
        assert FakeServices.instances[0].events[-1] == 'stop'

    def test_config_file_reaches_oslo_config(self, api, tmp_path):
        from vmmig import conf
        seen = {}
        original = api.host_list

        def host_list():
            seen['state_path'] = conf.CONF.state_path
            seen['workers'] = conf.CONF.conductor.worker_threads
            return original()
        api.host_list = host_list
        run(['host', 'list'], api, tmp_path, config='[conductor]\nworker_threads = 3\n')
        assert seen == {'state_path': str(tmp_path / 'state'), 'workers': 3}


class TestHelp:
    """`vmmig COMMAND --help` is the command's help, as `vmmig help COMMAND` is."""

    @pytest.mark.parametrize('argv,usage', [
        (['server', 'migrate', '--help'], 'usage: vmmig server migrate'),
        (['migration', 'list', '-h'], 'usage: vmmig migration list'),
        (['help', 'server', 'migrate'], 'usage: vmmig server migrate'),
    ])
    def test_command_help(self, api, tmp_path, argv, usage):
        result = run(argv, api, tmp_path)
        assert result.code == 0, result.stderr
        assert usage in result.stdout
        assert '--live-migration' in result.stdout or argv[0] == 'migration'
        assert not api.calls  # help reaches no conductor

    def test_application_help(self, api, tmp_path):
        # cliff prints the application's help and exits, as before; nothing is called.
        with pytest.raises(SystemExit) as exit_:
            run(['--help'], api, tmp_path)
        assert exit_.value.code in (0, None)
        assert not api.calls
