"""`vmmig demo`: the tour's steps, its checks, and its own state."""

import os

from tests.unit.cli import FakeConductor
from tests.unit.cli import FakeServices
from tests.unit.cli import run
from vmmig.cli import demo
from vmmig import conf
from vmmig.db import states
from vmmig import exception

CONF = conf.CONF


class DemoConductor(FakeConductor):
    """Refuses what the demo cluster refuses: PCI passthrough, and the other cluster."""

    def migrate_server(self, instance, migration_type, host=None, options=None,
                       hold_reason=None, requested_by=None):
        if instance == 'gpu-1':
            self._log('migrate_server', instance)
            raise exception.PrecheckFailed(instance=instance,
                                           reasons=['PCI passthrough 0000:3b:00.0'])
        if host == 'sim-d':
            self._log('migrate_server', instance)
            raise exception.PrecheckFailed(instance=instance,
                                           reasons=['cluster of sim-d is c2', 'no shared storage'])
        return super().migrate_server(instance, migration_type, host, options,
                                      hold_reason, requested_by)

    def host_maintenance_set(self, host, reason, options=None, dry_run=False,
                             requested_by=None):
        self._log('host_maintenance_set', host, reason, dry_run=dry_run)
        plan = {'id': None if dry_run else 1, 'strategy': 'drain', 'host': host,
                'state': 'recommended' if dry_run else 'partial', 'reason': reason,
                'estimate_s': 12.0, 'result': '1 of 2 VMs moved; gpu-1 stays',
                'actions': []}
        return dict(plan, dry_run=True) if dry_run else plan

    def plan_list(self, state=None, host=None, strategy=None):
        self._log('plan_list', state=state, host=host, strategy=strategy)
        return []

    def host_maintenance_unset(self, host, requested_by=None):
        self._log('host_maintenance_unset', host)
        return {'name': host, 'state': 'up', 'maintenance': False,
                'maintenance_reason': None}


class RecordingServices(FakeServices):
    def start(self):
        super().start()
        self.conf = dict(state_path=CONF.state_path, embedded=CONF.embedded,
                         connection=CONF.database.connection,
                         cluster_file=CONF.sim.cluster_file, clock=CONF.sim.clock)


def steps_where(**fields):
    return [s for s in demo.STEPS if all(getattr(s, k) == v for k, v in fields.items())]


class TestSteps:
    def test_the_tour_covers_every_kind_of_move(self):
        commands = {s.command: s for s in demo.STEPS}
        assert commands['server migrate --wait legacy-1'].expect == states.COMPLETED
        assert commands['server migrate --wait cache-1'].expect == states.COMPLETED
        for vm in ('web-1', 'db-1', 'app-1'):
            assert commands['server migrate --live-migration --wait %s' % vm].expect == \
                states.COMPLETED
        assert [s.command for s in steps_where(expect=states.COMPLETED)
                if '--shutdown' in s.command]
        assert commands['server migrate --live-migration --auto-converge --wait '
                        'batch-1'].expect == states.COMPLETED
        refused = steps_where(expect=demo.NO_RECORD)
        assert {s.instance for s in refused} == {'gpu-1', 'web-1'}
        assert all(s.exit_code == 1 for s in refused)
        assert any('--host sim-d' in s.command for s in refused)

    def test_held_then_resumed_and_held_then_aborted(self):
        steps = demo.STEPS
        for verb, end in (('resume', states.COMPLETED), ('abort', states.CANCELLED)):
            [i] = [i for i, s in enumerate(steps)
                   if s.command.startswith('migration %s' % verb)]
            assert steps[i].expect == end
            held = [s for s in steps[:i] if s.instance == steps[i].instance][-1]
            assert '--hold' in held.command and held.expect == states.HELD

    def test_expand(self):
        step = demo.Step('t', 'e', "server migrate --hold 'a b' web-1", 'web-1')
        shown, ran = demo.expand(step, 7)
        assert shown == ['server', 'migrate', '--hold', 'a b', 'web-1']
        assert ran[:5] == shown and ran[5:7] == ['-c', 'id']
        shown, ran = demo.expand(demo.Step('t', 'e', 'migration resume {last}'), 7)
        assert shown == ['migration', 'resume', '7']


class TestRun:
    def setup_method(self):
        FakeServices.instances = []

    def test_every_step_as_expected(self, tmp_path):
        state_dir = tmp_path / 'demo'
        api = DemoConductor()
        result = run(['demo', '--state-dir', str(state_dir)], api, tmp_path,
                     services=RecordingServices)
        assert result.code == 0, result.stdout + result.stderr
        assert 'All %d steps ended as expected.' % len(demo.STEPS) in result.stdout
        # Its own state, set before the services started.
        [services] = FakeServices.instances
        assert services.conf == dict(
            state_path=str(state_dir), embedded=True,
            connection='sqlite:///%s' % (state_dir / 'vmmig.sqlite'),
            cluster_file=demo.cluster.DEMO_CLUSTER, clock='virtual')
        assert state_dir.is_dir()
        # The refused requests reached the conductor and left nothing behind.
        assert {r['instance'] for r in api.migrations.values()} == {
            'legacy-1', 'cache-1', 'web-1', 'db-1', 'app-1', 'batch-1'}
        assert 'Migration of gpu-1 refused: PCI passthrough 0000:3b:00.0' in result.stderr

    def test_an_unexpected_outcome_fails_the_demo(self, tmp_path):
        api = DemoConductor(script={'batch-1': [{'state': states.FAILED,
                                                 'reason': 'did not converge'}]})
        result = run(['demo', '--state-dir', str(tmp_path / 'demo')], api, tmp_path)
        assert result.code == 1
        assert '!! batch-1 ended failed, expected completed' in result.stdout
        assert '1 of %d steps did not end as expected' % len(demo.STEPS) in result.stdout

    def test_a_refusal_that_does_not_happen_fails_the_demo(self, tmp_path):
        result = run(['demo', '--state-dir', str(tmp_path / 'demo')], FakeConductor(),
                     tmp_path)
        assert result.code == 1
        assert 'a migration was recorded, none was expected' in result.stdout

    def test_refuses_a_used_state_dir(self, tmp_path):
        state_dir = tmp_path / 'demo'
        state_dir.mkdir()
        (state_dir / 'vmmig.sqlite').write_text('')
        result = run(['demo', '--state-dir', str(state_dir)], DemoConductor(), tmp_path)
        assert result.code == 1
        assert 'is not empty' in result.stderr
        assert FakeServices.instances == []

    def test_temporary_state_is_removed(self, tmp_path):
        result = run(['demo'], DemoConductor(), tmp_path, services=RecordingServices)
        assert result.code == 0, result.stdout
        [services] = FakeServices.instances
        assert services.events[-1] == 'stop'
        assert os.path.basename(services.conf['state_path']).startswith('vmmig-demo-')
        assert not os.path.exists(services.conf['state_path'])
