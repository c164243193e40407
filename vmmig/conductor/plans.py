"""The conductor's RPC calls about hosts as a whole: maintenance, action plans, health.

A mixin of ConductorManager (vmmig/conductor/manager.py): a plan is built by a
strategy on the cluster model, recorded with its actions (and the host's
maintenance) in one transaction, and carried out by the dispatcher's passes
through ordinary migration records (vmmig/plans/executor.py).
"""

import logging

from vmmig import arguments as args
from vmmig.backends import base as backends
from vmmig import conf
from vmmig import context as vcontext
from vmmig.db import api as db
from vmmig.db import plans as plans_db
from vmmig import exception
from vmmig.health import base as health
from vmmig.plans import executor
from vmmig.plans import model as plan_model
from vmmig.plans import states
from vmmig import policy
from vmmig.strategies import base as strategies

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class PlanEndpoints(object):

    def init_plans(self):
        self.plans = executor.PlanRunner(self._record_action, self.notifier,
                                         lambda m: self.migration_abort(
                                             vcontext.internal_context('vmmig-plans'), m),
                                         stopping=lambda: self.dispatcher.stopping)
        self.dispatcher.on_pass = self.plans.advance

    def _record_action(self, instance, migration_type, host, options, action_id,
                       requested_by):
        return self._plan_and_record(instance, migration_type, host, options,
                                     requested_by=requested_by,
                                     extra={'action_id': action_id})

    def build_plan(self, strategy, host, options=None):
        """(actions, estimate): what ``strategy`` would do to empty ``host`` now."""
        model = plan_model.ClusterModel.load(host, self.checks.hosts)
        return strategies.load(strategy).build(model, host, options)

    def _new_plan(self, strategy, host, reason, options, dry_run, requested_by, state,
                  maintenance):
        if not reason:
            raise exception.Invalid(reason='a plan for host %s needs a reason' % host)
        record = db.host_get(host)
        if maintenance and record['maintenance']:
            raise exception.HostInMaintenance(host=host, why=(
                ': %s' % record['maintenance_reason'] if record['maintenance_reason']
                else ''))
        options = strategies.validate_options(options)
        actions, estimate = self.build_plan(strategy, host, options)
        plan = {'strategy': strategy, 'host': host, 'state': state, 'reason': reason,
                'options': options, 'requested_by': requested_by, 'estimate_s': estimate}
        if dry_run:
            return dict(plan, id=None, dry_run=True, state=states.RECOMMENDED, actions=[
                dict(a, position=i) for i, a in enumerate(actions, 1)])
        plan = plans_db.plan_create(plan, actions,
                                    maintenance_reason=reason if maintenance else None)
        LOG.info('Plan %s: %s of %s (%s), %d action(s), estimated %.0f s, %s',
                 plan['id'], strategy, host, reason, len(actions), estimate, state)
        executor.notify(self.notifier, 'create', plan, reason=reason)
        if state == states.ONGOING:
            executor.notify(self.notifier, 'start', plan, reason=reason)
            self.dispatcher.wake()
        return plan

    # Operator requests -----------------------------------------------------------

    @args.accepts(host=args.Name('host'), reason=args.Reason(), options=args.OPTIONS,
                  dry_run=args.Bool(), requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:host:maintenance:set')
    def host_maintenance_set(self, context, host, reason, options=None, dry_run=False,
                             requested_by=None):
        """The host leaves placement at once and a drain plan empties it."""
        plan = self._new_plan('drain', host, reason, options, dry_run, requested_by,
                              states.ONGOING, maintenance=True)
        if not dry_run:
            backends.tell_maintenance(self.backend, host)
        return plan

    @args.accepts(host=args.Name('host'), requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:host:maintenance:unset')
    def host_maintenance_unset(self, context, host, requested_by=None):
        """The host takes VMs again; a drain of it still under way is aborted."""
        record = plans_db.maintenance_unset(host)
        for plan in plans_db.plan_list(state=(states.RECOMMENDED, states.ONGOING),
                                       host=host, with_actions=True):
            self._abort(plan, 'host %s left maintenance' % host, requested_by)
        LOG.info('Host %s out of maintenance', host)
        backends.tell_maintenance(self.backend, host)
        return record

    @args.accepts(state=args.Optional(args.Choice(*states.ALL)),
                  host=args.Optional(args.Name('host')),
                  strategy=args.Optional(args.Name('strategy')))
    @policy.authorizes('vmmig:plan:list')
    def plan_list(self, context, state=None, host=None, strategy=None):
        """``strategy``: only its plans (``evacuate``: the HA monitor's recoveries)."""
        return plans_db.plan_list(state=state, host=host, with_actions=True,
                                  strategy=strategy)

    @args.accepts(plan=args.MigrationRef('plan'))
    @policy.authorizes('vmmig:plan:get')
    def plan_get(self, context, plan):
        return plans_db.plan_get(plan)

    def _plan_verb(self, verb, plan):
        record = plans_db.plan_get(plan)
        if record['state'] not in states.VERBS[verb] or (
                verb == 'abort' and record['abort_requested']):
            raise exception.PlanInvalidState(
                action=verb, plan=record['id'], state=record['state'] + (
                    ' (being aborted)' if record['abort_requested'] else ''),
                allowed=', '.join(states.VERBS[verb]))
        return record

    @args.accepts(plan=args.MigrationRef('plan'), dry_run=args.Bool(),
                  requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:plan:execute')
    def plan_execute(self, context, plan, dry_run=False, requested_by=None):
        record = self._plan_verb('execute', plan)
        if dry_run:
            return dict(record, dry_run=True)
        record = plans_db.plan_transition(record['id'], states.RECOMMENDED, states.ONGOING)
        executor.notify(self.notifier, 'start', record,
                        reason='executed by %s' % (requested_by or 'an operator'))
        self.dispatcher.wake()
        return record

    @args.accepts(plan=args.MigrationRef('plan'), dry_run=args.Bool(),
                  requested_by=args.REQUESTED_BY)
    @policy.authorizes('vmmig:plan:abort')
    def plan_abort(self, context, plan, dry_run=False, requested_by=None):
        record = self._plan_verb('abort', plan)
        if dry_run:
            return dict(record, dry_run=True)
        return self._abort(record, 'aborted by %s' % (requested_by or 'an operator'),
                           requested_by)

    def _abort(self, record, why, requested_by):
        if record['state'] == states.RECOMMENDED:
            try:
                record = plans_db.plan_transition(record['id'], states.RECOMMENDED,
                                                  states.CANCELLED, result=why)
                executor.notify(self.notifier, 'end', record, reason=why)
                return record
            except exception.PlanStateConflict:
                record = plans_db.plan_get(record['id'])  # executed meanwhile
        if not plans_db.plan_update(record['id'], (states.ONGOING,), abort_requested=True,
                                    result=why):
            return self._plan_verb('abort', record['id'])
        record = plans_db.plan_get(record['id'])
        self.plans.abort(record)
        executor.notify(self.notifier, 'abort', record, reason=why)
        self.dispatcher.wake()
        return plans_db.plan_get(record['id'])

    # Health -----------------------------------------------------------------------

    @args.accepts(host=args.Name('host'), status=args.Choice(*health.STATUSES),
                  reason=args.Optional(args.Text(1024)))
    @policy.authorizes('vmmig:host:health')
    def host_health(self, context, host, status, reason=None):
        """A host (its agent, or an outside monitor) says how it is. ``failing``:
        [ha] prefailure_action decides: a drain at once, or a recommended plan."""
        record = db.host_get(host)
        if status != health.FAILING:
            LOG.info('Host %s reports it is %s%s', host, status,
                     ': %s' % reason if reason else '')
            return {'host': host, 'status': status, 'action': 'none', 'plan': None}
        why = 'pre-failure: %s' % (reason or 'the host reports it is failing')
        action = CONF.ha.prefailure_action
        unfinished = plans_db.plan_list(state=(states.RECOMMENDED, states.ONGOING),
                                        host=host)
        if record['maintenance'] or unfinished:
            # Already being emptied, or already announced: the signal changes nothing.
            LOG.info('Host %s reports it is failing (%s); %s', host, why,
                     'it is in maintenance already' if record['maintenance']
                     else 'plan %s is there already' % unfinished[0]['id'])
            return {'host': host, 'status': status, 'action': 'none',
                    'plan': unfinished[0] if unfinished else None}
        LOG.warning('Host %s reports it is failing (%s): %s', host, why, action)
        plan = self._new_plan('prefailure', host, why, {}, False, 'vmmig-ha',
                              states.ONGOING if action == 'drain' else states.RECOMMENDED,
                              maintenance=action == 'drain')
        executor.notify(self.notifier, 'automatic', plan, reason='%s; %s' % (why, (
            'host %s put into maintenance and drained' % host if action == 'drain'
            else 'plan %s recommended, nothing moves until it is executed' % plan['id'])))
        return {'host': host, 'status': status, 'action': action, 'plan': plan}

    # Reads --------------------------------------------------------------------------

    @staticmethod
    def with_drain_progress(hosts):
        """Hosts with ``drain``: their latest plan's state and how far it got."""
        latest = plans_db.drain_progress([h['name'] for h in hosts])
        for host in hosts:
            plan = latest.get(host['name'])
            if plan is None:
                host['drain'] = None
                continue
            actions = plan['actions']
            host['drain'] = {
                'plan': plan['id'], 'strategy': plan['strategy'], 'state': plan['state'],
                'moved': sum(a['state'] == states.MOVED for a in actions),
                'stays': sum(a['state'] in (states.STAYS, states.ACTION_FAILED,
                                            states.ACTION_CANCELLED)
                             and not _replaced(a, actions) for a in actions),
                'total': sum(a['fallback_of'] is None for a in actions),
                'result': plan['result']}
        return hosts


def _replaced(action, actions):
    """A failed live move that a cold one took over: not a VM that stays."""
    return any(a['fallback_of'] == action['id'] for a in actions)
