"""`host maintenance set|unset` and `plan list|show|execute|abort`: host operations as
action plans, shown with their time estimate before anything moves (--dry-run)."""

from cliff import columns

from vmmig.cli import base
from vmmig.plans import states

PLAN_FIELDS = ('id', 'uuid', 'strategy', 'host', 'state', 'reason', 'result',
               'estimate_s', 'options', 'requested_by', 'abort_requested', 'dry_run',
               'created_at', 'started_at', 'finished_at', 'updated_at', 'actions')
UNSUCCESSFUL = frozenset((states.PARTIAL, states.FAILED, states.CANCELLED))


def action_line(action):
    """One VM of a plan, in the words an operator reads."""
    head = '%s. %s (%s)' % (action.get('position'), action.get('instance'),
                            action.get('power_state'))
    if not action.get('migration_type'):
        return '%s: stays: %s' % (head, action.get('reason'))
    line = '%s: %s%s -> %s, ~%.0f s' % (
        head, action['migration_type'],
        ' (shut down first)' if (action.get('options') or {}).get('shutdown') else '',
        action.get('dest_host') or 'the scheduler\'s choice', action.get('estimate_s') or 0)
    state = action.get('state')
    if state and state != states.PENDING:
        line += ' [%s%s]' % (state, ', migration %s' % action['migration_id']
                             if action.get('migration_id') else '')
    if state in (states.ACTION_FAILED, states.STAYS, states.ACTION_CANCELLED) or (
            action.get('fallback_of') and action.get('reason')):
        line += ': %s' % action.get('reason')
    return line


class ActionsColumn(columns.FormattableColumn):
    """The actions of a plan: a line each for people, the records for programs."""

    def human_readable(self):
        return '\n'.join(action_line(a) for a in self._value or ())


def plan_show(plan):
    names = [f for f in PLAN_FIELDS if f in plan]
    values = []
    for name in names:
        value = plan[name]
        if name == 'actions':
            value = ActionsColumn(value)
        elif name in base.TIME_FIELDS:
            value = base.TimeColumn(value)
        elif isinstance(value, dict):
            value = base.DictColumn(value)
        elif name == 'estimate_s' and value is not None:
            value = round(value, 1)
        values.append(value)
    return tuple(names), tuple(values)


def summary(plan):
    """One line: what the plan does and how long it should take."""
    actions = plan.get('actions') or ()
    moving = [a for a in actions if a.get('migration_type')]
    live = sum(a['migration_type'] == 'live' for a in moving)
    stays = len(actions) - len(moving)
    what = 'dry run, nothing recorded' if plan.get('dry_run') else 'plan %s, %s' % (
        plan.get('id'), plan.get('state'))
    return ('%s of %s (%s): %d VM(s) move (%d live, %d cold), %d stay(s); estimated '
            '%.0f s within the limits' % (plan.get('strategy'), plan.get('host'), what,
                                          len(moving), live, len(moving) - live, stays,
                                          plan.get('estimate_s') or 0))


def add_dry_run(parser):
    parser.add_argument('--dry-run', action='store_true',
                        help='Show the plan (each VM, what happens to it, where, in which '
                             'order, why some stay, the estimated duration) and do '
                             'nothing else.')


def add_wait(parser):
    parser.add_argument('--wait', action='store_true',
                        help='Wait until the plan ends; exit 1 unless it succeeded.')


class PlanCommand(base.ShowOne):

    def finish(self, parsed_args, plan):
        if getattr(parsed_args, 'wait', False) and not plan.get('dry_run') \
                and plan.get('id') is not None:
            plan = self.wait(plan)
        self.app.stderr.write(summary(plan) + '\n')
        if plan.get('state') in UNSUCCESSFUL and (
                getattr(parsed_args, 'wait', False) or plan.get('state') != states.CANCELLED):
            self.exit_code = base.EXIT_ERROR
        return plan_show(plan)

    def wait(self, plan):
        while plan['state'] not in states.TERMINAL:
            self.app.sleep(self.app.poll_interval)
            plan = self.conductor.plan_get(plan['id'])
        return plan


class HostMaintenanceSet(PlanCommand):
    """Take a host out of placement and move its VMs away (a drain plan)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('host', metavar='HOST')
        parser.add_argument('--reason', required=True,
                            help='Why: recorded on the host and the plan.')
        parser.add_argument('--shutdown-passthrough', action='store_true',
                            help='Move a running VM with a passthrough device cold, shut '
                                 'down first (else it stays).')
        parser.add_argument('--cold-fallback', action='store_true',
                            help='Move a running VM cold, shut down first, when its live '
                                 'migration fails (else it stays).')
        add_dry_run(parser)
        add_wait(parser)
        return parser

    def take_action(self, parsed_args):
        options = {}
        if parsed_args.shutdown_passthrough:
            options['shutdown_passthrough'] = True
        if parsed_args.cold_fallback:
            options['cold_fallback'] = True
        plan = self.conductor.host_maintenance_set(
            parsed_args.host, parsed_args.reason, options=options,
            dry_run=parsed_args.dry_run, requested_by=base.requester())
        return self.finish(parsed_args, plan)


class HostMaintenanceUnset(base.ShowOne):
    """Put a host back into placement; a drain of it still under way is aborted."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('host', metavar='HOST')
        return parser

    def take_action(self, parsed_args):
        host = self.conductor.host_maintenance_unset(parsed_args.host,
                                                     requested_by=base.requester())
        names = ('name', 'state', 'maintenance', 'maintenance_reason')
        return names, tuple(host.get(n) for n in names)


class PlanList(base.Lister):
    """List the action plans: drains, pre-failure moves, and the HA monitor's recoveries
    of dead hosts (strategy ``evacuate``)."""

    columns = ('ID', 'Strategy', 'Host', 'State', 'Moved', 'Estimate (s)', 'Reason',
               'Result')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--state', choices=states.ALL)
        parser.add_argument('--host', metavar='HOST')
        parser.add_argument('--strategy', metavar='STRATEGY',
                            help='Only the plans of this strategy (drain, prefailure, '
                                 'evacuate: the HA recoveries).')
        return parser

    def take_action(self, parsed_args):
        rows = []
        kwargs = {'strategy': parsed_args.strategy} if parsed_args.strategy else {}
        for plan in self.conductor.plan_list(state=parsed_args.state, host=parsed_args.host,
                                             **kwargs):
            actions = plan.get('actions') or ()
            rows.append((plan['id'], plan['strategy'], plan['host'], plan['state'],
                         '%d/%d' % (sum(a['state'] == states.MOVED for a in actions),
                                    sum(not a.get('fallback_of') for a in actions)),
                         round(plan.get('estimate_s') or 0, 1), plan.get('reason'),
                         plan.get('result') or ''))
        return self.columns, rows


class _PlanVerb(PlanCommand):
    verb = None

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('plan', metavar='PLAN', help='ID or UUID of the plan.')
        if self.verb:
            add_dry_run(parser)
            add_wait(parser)
        return parser


class PlanShow(_PlanVerb):
    """Show an action plan and each of its actions."""

    def take_action(self, parsed_args):
        return self.finish(parsed_args, self.conductor.plan_get(parsed_args.plan))


class PlanExecute(_PlanVerb):
    """Carry out a recommended plan."""

    verb = 'execute'

    def take_action(self, parsed_args):
        return self.finish(parsed_args, self.conductor.plan_execute(
            parsed_args.plan, dry_run=parsed_args.dry_run, requested_by=base.requester()))


class PlanAbort(_PlanVerb):
    """Stop a plan: what has not started is cancelled, migrations under way aborted."""

    verb = 'abort'

    def take_action(self, parsed_args):
        return self.finish(parsed_args, self.conductor.plan_abort(
            parsed_args.plan, dry_run=parsed_args.dry_run, requested_by=base.requester()))
