"""Carries out action plans: each action becomes an ordinary migration record.

The conductor's dispatcher calls ``advance`` at every pass. Everything it needs
is in the database: a conductor that restarts, or another one, picks an ongoing
plan up where it stood. An action's migration carries the action's id (unique),
so a conductor killed between recording a migration and noting it in the plan
finds it and links it instead of moving the VM a second time.
"""

import logging

from vmmig.db import plans as plans_db
from vmmig.db import states as mstates
from vmmig import exception
from vmmig.plans import states

LOG = logging.getLogger(__name__)


def notify(notifier, event, plan, reason=None, error=False):
    """``vmmig.plan.<event>`` with the plan (without its actions) and why."""
    payload = {k: v for k, v in plan.items() if k != 'actions'}
    payload['event_reason'] = reason
    if plan.get('actions') is not None:
        payload['actions'] = [{k: a.get(k) for k in (
            'position', 'instance', 'migration_type', 'dest_host', 'state', 'reason',
            'migration_id')} for a in plan['actions']]
    try:
        (notifier.error if error else notifier.info)({}, 'vmmig.plan.%s' % event, payload)
    except Exception:  # noqa: a lost notification must not stop a plan
        LOG.warning('Could not emit vmmig.plan.%s for plan %s', event, plan.get('id'),
                    exc_info=True)


class PlanRunner(object):
    """``record(instance, migration_type, host, options, action_id, requested_by)``:
    the conductor's way to check and record one migration (or raise why not)."""

    def __init__(self, record, notifier, abort_migration, stopping=lambda: False):
        self.record = record
        self.notifier = notifier
        self.abort_migration = abort_migration
        # A conductor that stops leaves the rest to its next run (or another one).
        self.stopping = stopping

    def advance(self):
        """One look at every ongoing plan."""
        for plan in plans_db.plan_list(state=states.ONGOING, with_actions=True):
            if self.stopping():
                return
            try:
                self.advance_plan(plan)
            except exception.PlanStateConflict as e:
                LOG.info('Plan %s: %s', plan['id'], e)

    def advance_plan(self, plan):
        migrations = plans_db.migrations_of_plan(plan['id'])
        changed = False
        for action in plan['actions']:
            if self.stopping():
                return
            if action['state'] == states.PENDING:
                changed |= self._start(plan, action, migrations)
            elif action['state'] == states.RECORDED:
                changed |= self._follow(plan, action, migrations.get(action['id']))
        if changed:
            plan = plans_db.plan_get(plan['id'])
        if all(a['state'] in states.ACTION_TERMINAL for a in plan['actions']):
            self._end(plan)

    def _start(self, plan, action, migrations):
        if plan['abort_requested']:
            return plans_db.action_transition(action['id'], states.PENDING,
                                              states.ACTION_CANCELLED,
                                              reason='the plan was aborted first')
        migration = migrations.get(action['id'])
        if migration is None:
            try:
                migration = self._record(plan, action)
            except exception.ActionAlreadyRecorded:
                migration = plans_db.migration_of_action(action['id'])
            except (exception.Invalid, exception.NotFound) as e:
                # Another conductor advancing the same plan may have recorded it a
                # moment ago (the prechecks then see its migration and refuse): the
                # action is that migration, and must not be said to stay.
                migration = plans_db.migration_of_action(action['id'])
                if migration is None:
                    LOG.warning('Plan %s: %s stays on %s: %s', plan['id'],
                                action['instance'], plan['host'], e.message)
                    return plans_db.action_transition(action['id'], states.PENDING,
                                                      states.STAYS, reason=e.message)
        if plans_db.action_transition(action['id'], states.PENDING, states.RECORDED,
                                      migration_id=migration['id'],
                                      dest_host=migration['dest_host']):
            LOG.info('Plan %s: %s is migration %s (%s to %s)', plan['id'],
                     action['instance'], migration['id'], migration['migration_type'],
                     migration['dest_host'])
        return True

    def _record(self, plan, action):
        """The planned destination first; if it cannot take the VM any more, wherever
        the scheduler sends it."""
        try:
            return self.record(action['instance'], action['migration_type'],
                               action['dest_host'], action['options'], action['id'],
                               plan['requested_by'])
        except exception.PrecheckFailed as e:
            # An evacuation's planned destination is a reserved host ([ha]
            # recovery_method = reserved_host): no other host is chosen instead.
            if not action['dest_host'] or action['migration_type'] == 'evacuate':
                raise
            LOG.info('Plan %s: %s cannot go to %s any more (%s); choosing again',
                     plan['id'], action['instance'], action['dest_host'], e.message)
            return self.record(action['instance'], action['migration_type'], None,
                               action['options'], action['id'], plan['requested_by'])

    def _follow(self, plan, action, migration):
        if migration is None or migration['state'] not in mstates.TERMINAL:
            return False
        if migration['state'] == mstates.COMPLETED:
            return plans_db.action_transition(
                action['id'], states.RECORDED, states.MOVED, reason=migration['reason'],
                dest_host=migration['dest_host'])
        why = 'migration %s %s: %s' % (migration['id'], migration['state'],
                                       migration['reason'] or 'no reason recorded')
        if (migration['state'] == mstates.FAILED and action['fallback_of'] is None
                and not plan['abort_requested']):
            # Rolled back cleanly, the VM where it was (a conductor killed mid-move
            # leaves that after its recovery): tried once more, the same way.
            added = plans_db.action_fallback(action, why, {
                'instance': action['instance'], 'power_state': action['power_state'],
                'migration_type': action['migration_type'], 'options': action['options'],
                # An evacuation keeps its reserved host; other moves choose again.
                'dest_host': action['dest_host']
                if action['migration_type'] == 'evacuate' else None,
                'reason': 'tried again after %s' % why})
            if added:
                LOG.warning('Plan %s: %s; trying %s once more', plan['id'], why,
                            action['instance'])
            return True
        # The retry failed too: a cold move, shut down first, only if asked (never
        # an evacuation: its VM is on a dead host, there is nothing to shut down).
        if (action['migration_type'] == 'live' and migration['state'] == mstates.FAILED
                and plan['options'].get('cold_fallback') and not plan['abort_requested']):
            added = plans_db.action_fallback(action, why, {
                'instance': action['instance'], 'power_state': action['power_state'],
                'migration_type': 'cold', 'options': {'shutdown': True},
                'reason': 'its live migration failed; moved cold, shut down first, '
                          'as asked (cold_fallback)'})
            if added:
                LOG.warning('Plan %s: live migration %s of %s failed; moving it cold '
                            '(shut down) as asked', plan['id'], migration['id'],
                            action['instance'])
                notify(self.notifier, 'fallback', plans_db.plan_get(plan['id']),
                       reason='%s: %s; moved cold with a shutdown instead'
                              % (action['instance'], why))
            return True
        return plans_db.action_transition(action['id'], states.RECORDED,
                                          states.ACTION_FAILED, reason=why)

    def _end(self, plan):
        if plan['abort_requested']:
            target = states.CANCELLED
            moved = sum(a['state'] == states.MOVED for a in plan['actions'])
            result = 'aborted; %d of %d VMs had moved' % (moved, len(plan['actions']))
        else:
            target, result = states.outcome(plan['actions'])
        plan = plans_db.plan_transition(plan['id'], states.ONGOING, target, result=result)
        # A VM left behind is worth a warning (the HA monitor's recoveries above all).
        log = LOG.warning if target in (states.FAILED, states.PARTIAL) else LOG.info
        log('Plan %s (%s of %s) ended %s: %s', plan['id'], plan['strategy'], plan['host'],
            target, result)
        notify(self.notifier, 'end', plan, reason=result,
               error=target in (states.FAILED, states.PARTIAL))

    def abort(self, plan):
        """Cancel what has not started; abort the migrations under way. The plan ends
        cancelled once they have ended."""
        for action in plan['actions']:
            if self.stopping():
                return
            if action['state'] == states.PENDING:
                plans_db.action_transition(action['id'], states.PENDING,
                                           states.ACTION_CANCELLED,
                                           reason='the plan was aborted first')
            elif action['state'] == states.RECORDED and action['migration_id']:
                try:
                    self.abort_migration(action['migration_id'])
                except exception.InvalidState:
                    pass  # it ended meanwhile
