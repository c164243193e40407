"""`host maintenance` and `plan`: arguments -> RPC calls, plans -> output, exit codes."""

import json

import pytest

from tests.unit.cli import FakeConductor
from tests.unit.cli import run
from vmmig import exception


def _plan(state='ongoing', dry_run=False, **values):
    plan = dict(id=None if dry_run else 7, uuid='u7', strategy='drain', host='sim-a',
                state=state, reason='new DIMMs', result=None, estimate_s=61.4,
                options={}, requested_by='ops', abort_requested=False,
                created_at=1700000000.0, started_at=None, finished_at=None,
                updated_at=1700000000.0, actions=[
                    dict(position=1, instance='db-1', power_state='running',
                         migration_type='live', dest_host='sim-b', options={},
                         state='pending', reason=None, migration_id=None,
                         fallback_of=None, estimate_s=41.0),
                    dict(position=2, instance='legacy-1', power_state='shutoff',
                         migration_type='cold', dest_host='sim-c', options={},
                         state='pending', reason=None, migration_id=None,
                         fallback_of=None, estimate_s=9.0),
                    dict(position=3, instance='gpu-1', power_state='running',
                         migration_type=None, dest_host=None, options={}, state='stays',
                         reason='it runs with passthrough device(s) 0000:3b:00.0',
                         migration_id=None, fallback_of=None, estimate_s=0.0)])
    if dry_run:
        plan['dry_run'] = True
    plan.update(values)
    return plan


class PlanConductor(FakeConductor):
    def __init__(self, plans=(), refuse=None):
        super().__init__()
        self.plans = list(plans)
        self.refusal = refuse

    def host_maintenance_set(self, host, reason, options=None, dry_run=False,
                             requested_by=None):
        self._log('host_maintenance_set', host, reason, options=options, dry_run=dry_run)
        if self.refusal:
            raise self.refusal
        return _plan(dry_run=dry_run)

    def host_maintenance_unset(self, host, requested_by=None):
        self._log('host_maintenance_unset', host)
        if self.refusal:
            raise self.refusal
        return {'name': host, 'state': 'up', 'maintenance': False,
                'maintenance_reason': None}

    def plan_get(self, plan):
        self._log('plan_get', plan)
        return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]

    def plan_list(self, state=None, host=None):
        self._log('plan_list', state=state, host=host)
        return self.plans

    def plan_execute(self, plan, dry_run=False, requested_by=None):
        self._log('plan_execute', plan, dry_run=dry_run)
        if self.refusal:
            raise self.refusal
        return _plan(state='recommended' if dry_run else 'ongoing')


def test_a_dry_run_shows_every_vm_and_the_estimate(tmp_path):
    api = PlanConductor()
    result = run(['host', 'maintenance', 'set', '--reason', 'new DIMMs', '--dry-run',
                  '--cold-fallback', 'sim-a'], api, tmp_path)
    assert result.code == 0, result.stderr
    [(_name, args, kwargs)] = api.calls
    assert args == ('sim-a', 'new DIMMs')
    assert kwargs == {'options': {'cold_fallback': True}, 'dry_run': True}
    assert '1. db-1 (running): live -> sim-b, ~41 s' in result.stdout
    assert '2. legacy-1 (shutoff): cold -> sim-c, ~9 s' in result.stdout
    assert ('3. gpu-1 (running): stays: it runs with passthrough device(s) '
            '0000:3b:00.0') in result.stdout
    assert ('drain of sim-a (dry run, nothing recorded): 2 VM(s) move (1 live, 1 cold), '
            '1 stay(s); estimated 61 s within the limits') in result.stderr


def test_json_output_keeps_the_actions(tmp_path):
    result = run(['host', 'maintenance', 'set', '--reason', 'x', '-f', 'json', 'sim-a'],
                 PlanConductor(), tmp_path)
    shown = json.loads(result.stdout)
    assert shown['id'] == 7 and shown['state'] == 'ongoing'
    assert [a['instance'] for a in shown['actions']] == ['db-1', 'legacy-1', 'gpu-1']


def test_wait_follows_the_plan_and_a_partial_end_exits_1(tmp_path):
    api = PlanConductor(plans=[_plan(), _plan(state='partial',
                                              result='2 of 3 VMs moved; gpu-1 stays')])
    result = run(['host', 'maintenance', 'set', '--reason', 'x', '--wait', 'sim-a'], api,
                 tmp_path)
    assert result.code == 1
    assert 'plan 7, partial' in result.stderr
    assert '2 of 3 VMs moved; gpu-1 stays' in result.stdout


@pytest.mark.parametrize('argv,error,words', [
    (['host', 'maintenance', 'set', '--reason', 'x', 'sim-a'],
     exception.HostInMaintenance(host='sim-a', why=': firmware'),
     'Host sim-a is already in maintenance: firmware.'),
    (['host', 'maintenance', 'unset', 'sim-b'], exception.HostNotInMaintenance(host='sim-b'),
     'Host sim-b is not in maintenance; there is nothing to unset.'),
    (['plan', 'execute', '7'], exception.PlanInvalidState(
        action='execute', plan=7, state='succeeded', allowed='recommended'),
     'Cannot execute action plan 7 while it is succeeded; allowed from: recommended'),
])
def test_refusals_are_one_line_and_exit_1(tmp_path, argv, error, words):
    result = run(argv, PlanConductor(refuse=error), tmp_path)
    assert result.code == 1
    assert result.stderr.strip() == words


def test_list(tmp_path):
    done = _plan(state='succeeded', result='every VM moved (2)')
    done['actions'][0]['state'] = 'moved'
    result = run(['plan', 'list', '-f', 'json'], PlanConductor(plans=[done]), tmp_path)
    [row] = json.loads(result.stdout)
    assert row['ID'] == 7 and row['State'] == 'succeeded' and row['Moved'] == '1/3'


def test_host_list_shows_the_drain(tmp_path):
    api = FakeConductor(hosts=[{'name': 'sim-a', 'state': 'up', 'maintenance': True,
                                'maintenance_reason': 'DIMMs', 'facts': {},
                                'drain': {'plan': 7, 'strategy': 'drain',
                                          'state': 'ongoing', 'moved': 3, 'stays': 1,
                                          'total': 5, 'result': None}}])
    result = run(['host', 'list', '-f', 'json'], api, tmp_path)
    [row] = json.loads(result.stdout)
    assert row['Drain'] == '3/5 moved, ongoing (plan 7), 1 stay'
    assert row['Maintenance'] is True
