"""Client of the conductor's RPC API (the CLI and the agents use it).

Version history:

* 1.0 - Initial version: migrate_server, evacuate_host, migration_list,
  migration_get, migration_abort, migration_hold, migration_resume,
  migration_force_complete, host_list, instance_list, host_eligible, heartbeat,
  migration_progress, agent_started.
* 1.1 - heartbeat: ``facts`` and ``instances`` may be left out (a liveness-only
  heartbeat of an agent whose host has not changed since its last report).
* 1.2 - agent_started takes ``agent``: the RPC server of a process that serves
  several hosts, which the conductor addresses with the host in the arguments.
* 1.3 - Action plans and maintenance: host_maintenance_set, host_maintenance_unset,
  plan_list, plan_get, plan_execute, plan_abort, host_health; host_list gives
  each host's ``drain``.
* 1.4 - plan_list takes ``strategy``: ``evacuate`` lists the HA monitor's
  recoveries, each an action plan (a host it fenced stays in maintenance until
  host_maintenance_unset).
* 1.5 - Every call carries an oslo.context request context (user, project, roles,
  request id) that the conductor checks against its policy (vmmig.policies); a
  call whose context has no role passing the endpoint's rule is refused with
  PolicyNotAuthorized. ``requested_by`` is still taken but the context's user,
  when it names one, is what the records keep. A 1.4 client's calls carry an
  empty context and are refused.
* 1.6 - The agents' reports (agent_started, heartbeat, migration_progress,
  host_health) go to ``[conductor] report_topic``, served by an endpoint that
  offers nothing else; the operators' topic serves the operators' calls (and the
  reports of older agents while ``[conductor] reports_on_operator_topic``). The
  messages themselves are unchanged: a client capped below 1.6 sends its reports
  on the operators' topic as before.
"""

from vmmig import conf
from vmmig import context as vcontext
from vmmig import rpc

CONF = conf.CONF

RPC_API_VERSION = '1.6'


class ConductorAPI(object):

    context = None

    def __init__(self, timeout=None, context=None):
        """``context``: who asks, carried by every call: a RequestContext, or a function
        that returns one per call; unset, the request this thread serves, else a
        service context (vmmig.context.outgoing)."""
        self.client = rpc.get_client(CONF.conductor.topic, RPC_API_VERSION, timeout=timeout,
                                     cap_option='conductor')
        # The agents' reports: their own topic from 1.6 on, else the operators' one.
        if self.client.can_send_version('1.6'):
            self.reports = rpc.get_client(CONF.conductor.report_topic, RPC_API_VERSION,
                                          timeout=timeout, cap_option='conductor')
        else:
            self.reports = self.client
        self.context = context

    def _ctxt(self):
        if self.context is None:
            return vcontext.outgoing()
        return self.context() if callable(self.context) else self.context

    def _call(self, method, **kwargs):
        return self.client.prepare().call(self._ctxt(), method, **kwargs)

    def _cast(self, method, **kwargs):
        self.client.prepare().cast(self._ctxt(), method, **kwargs)

    # Operator requests -----------------------------------------------------

    def migrate_server(self, instance, migration_type, host=None, options=None,
                       hold_reason=None, requested_by=None):
        return self._call('migrate_server', instance=instance, migration_type=migration_type,
                          host=host, options=options or {}, hold_reason=hold_reason,
                          requested_by=requested_by)

    def evacuate_host(self, host, target_host=None, options=None, requested_by=None):
        return self._call('evacuate_host', host=host, target_host=target_host,
                          options=options or {}, requested_by=requested_by)

    def migration_list(self, state=None, instance=None, host=None):
        return self._call('migration_list', state=state, instance=instance, host=host)

    def migration_get(self, migration):
        return self._call('migration_get', migration=migration)

    def migration_abort(self, migration, requested_by=None):
        return self._call('migration_abort', migration=migration, requested_by=requested_by)

    def migration_hold(self, migration, reason, requested_by=None):
        return self._call('migration_hold', migration=migration, reason=reason,
                          requested_by=requested_by)

    def migration_resume(self, migration, requested_by=None):
        return self._call('migration_resume', migration=migration, requested_by=requested_by)

    def migration_force_complete(self, migration, requested_by=None):
        return self._call('migration_force_complete', migration=migration,
                          requested_by=requested_by)

    def host_list(self):
        return self._call('host_list')

    def host_eligible(self, instance, migration_type):
        return self._call('host_eligible', instance=instance, migration_type=migration_type)

    def instance_list(self, host=None):
        return self._call('instance_list', host=host)

    # From the agents ---------------------------------------------------------

    def heartbeat(self, host, facts, instances, reported_at, changed=True):
        """Report the host; True when the report was a full one.

        With ``changed=False`` (nothing changed since the last full report) a 1.1
        conductor gets only the host and the time: alive.
        """
        if not changed and self.client.can_send_version('1.1'):
            cctxt = self.reports.prepare(version='1.1')
            cctxt.cast(self._ctxt(), 'heartbeat', host=host, reported_at=reported_at)
            return False
        self.reports.prepare().cast(self._ctxt(), 'heartbeat', host=host, facts=facts,
                                    instances=instances, reported_at=reported_at)
        return True

    def migration_progress(self, migration_id, stats):
        self.reports.prepare().cast(self._ctxt(), 'migration_progress',
                                    migration_id=migration_id, stats=stats)

    def agent_started(self, host, facts, instances, reported_at, timeout=None, agent=None):
        """Register the host; returns the instances it must forget (evacuated away).

        ``timeout`` is for this attempt only: an agent that starts before the
        conductor retries soon instead of waiting a whole rpc_timeout. ``agent``:
        the RPC server that serves the host, when it is not the host's own name
        (1.2; such processes are new with it).
        """
        kwargs = {}
        options = {}
        if agent is not None and agent != host:
            rpc.require_version(self.reports, '1.2', 'conductor', 'host %s, served by '
                                'agent process %s,' % (host, agent))
            kwargs['agent'] = agent
            options['version'] = '1.2'
        return self.reports.prepare(timeout=timeout, **options).call(
            self._ctxt(), 'agent_started', host=host, facts=facts, instances=instances,
            reported_at=reported_at, **kwargs)

    # Action plans, maintenance, health (1.3) -------------------------------------

    def _call_1_3(self, method, **kwargs):
        rpc.require_version(self.client, '1.3', 'conductor', method)
        return self.client.prepare(version='1.3').call(self._ctxt(), method, **kwargs)

    def host_maintenance_set(self, host, reason, options=None, dry_run=False,
                             requested_by=None):
        return self._call_1_3('host_maintenance_set', host=host, reason=reason,
                              options=options or {}, dry_run=dry_run,
                              requested_by=requested_by)

    def host_maintenance_unset(self, host, requested_by=None):
        return self._call_1_3('host_maintenance_unset', host=host,
                              requested_by=requested_by)

    def plan_list(self, state=None, host=None, strategy=None):
        if strategy is None:
            return self._call_1_3('plan_list', state=state, host=host)
        rpc.require_version(self.client, '1.4', 'conductor', 'listing plans by strategy')
        return self.client.prepare(version='1.4').call(self._ctxt(), 'plan_list',
                                                       state=state, host=host,
                                                       strategy=strategy)

    def plan_get(self, plan):
        return self._call_1_3('plan_get', plan=plan)

    def plan_execute(self, plan, dry_run=False, requested_by=None):
        return self._call_1_3('plan_execute', plan=plan, dry_run=dry_run,
                              requested_by=requested_by)

    def plan_abort(self, plan, dry_run=False, requested_by=None):
        return self._call_1_3('plan_abort', plan=plan, dry_run=dry_run,
                              requested_by=requested_by)

    def host_health(self, host, status, reason=None):
        """What an outside monitor (or the host's agent) says of the host; returns what
        the conductor did about it."""
        rpc.require_version(self.client, '1.3', 'conductor', 'host_health')
        return self.reports.prepare(version='1.3').call(self._ctxt(), 'host_health', host=host,
                                                        status=status, reason=reason)
