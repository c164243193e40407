"""What each resource does: its input checked (vmmig.api.params) against the kinds the
conductor endpoint declares, then one RPC call with the request's context.

A handler returns ``(status, body)``; the conductor's refusals (policy, state,
not found) are raised through and shaped by vmmig.api.app.
"""

from vmmig.api import params
from vmmig import arguments as args
from vmmig.conductor import manager

M = manager.ConductorManager


def _kinds(endpoint, *names):
    kinds = params.endpoint_kinds(endpoint)
    return {name: kinds[name] for name in names}


# Migrations -----------------------------------------------------------------------

def migration_list(api, req, route):
    filters = params.query(req, _kinds(M.migration_list, 'state', 'instance', 'host'))
    return 200, {'migrations': api.migration_list(**filters)}


CREATE = _kinds(M.migrate_server, 'instance', 'migration_type', 'host', 'options',
                'hold_reason')


def migration_create(api, req, route):
    body = params.json_body(req, CREATE, required=('instance', 'migration_type'))
    return 202, {'migration': api.migrate_server(**body)}


def _migration(route):
    return params.path(route, _kinds(M.migration_get, 'migration'))['migration']


def migration_show(api, req, route):
    return 200, {'migration': api.migration_get(_migration(route))}


#: What a migration record says of the progress of its job (the agents report it).
PROGRESS_FIELDS = ('id', 'uuid', 'instance', 'state', 'bytes_total', 'bytes_processed',
                   'bytes_remaining', 'disk_total', 'disk_remaining', 'dirty_rate',
                   'iteration', 'downtime_ms', 'postcopy', 'progress_at')


def migration_progress(api, req, route):
    record = api.migration_get(_migration(route))
    return 200, {'progress': {f: record.get(f) for f in PROGRESS_FIELDS}}


def migration_hold(api, req, route):
    body = params.json_body(req, _kinds(M.migration_hold, 'reason'), required=('reason',))
    return 200, {'migration': api.migration_hold(_migration(route), body['reason'])}


def _verb(name):
    def handle(api, req, route):
        params.json_body(req, {})
        return 200, {'migration': getattr(api, name)(_migration(route))}
    handle.__name__ = name
    return handle


migration_resume = _verb('migration_resume')
migration_abort = _verb('migration_abort')
migration_force_complete = _verb('migration_force_complete')


# Hosts and servers -------------------------------------------------------------------

def host_list(api, req, route):
    params.query(req, {})
    return 200, {'hosts': api.host_list()}


def _host(route):
    return params.path(route, {'host': args.Name('host')})['host']


def host_evacuate(api, req, route):
    body = params.json_body(req, _kinds(M.evacuate_host, 'target_host', 'options'))
    return 202, {'migrations': api.evacuate_host(_host(route), **body)}


def host_maintenance_set(api, req, route):
    body = params.json_body(req, _kinds(M.host_maintenance_set, 'reason', 'options',
                                        'dry_run'), required=('reason',))
    plan = api.host_maintenance_set(_host(route), **body)
    return 200 if body.get('dry_run') else 202, {'plan': plan}


def host_maintenance_unset(api, req, route):
    return 200, {'host': api.host_maintenance_unset(_host(route))}


def host_health(api, req, route):
    body = params.json_body(req, _kinds(M.host_health, 'status', 'reason'),
                            required=('status',))
    return 200, {'health': api.host_health(_host(route), **body)}


def server_list(api, req, route):
    filters = params.query(req, _kinds(M.instance_list, 'host'))
    return 200, {'servers': api.instance_list(**filters)}


def server_eligible_hosts(api, req, route):
    instance = params.path(route, _kinds(M.host_eligible, 'instance'))['instance']
    query = params.query(req, {'migration_type': args.Choice('live', 'cold')})
    return 200, {'hosts': api.host_eligible(instance,
                                            query.get('migration_type', 'cold'))}


# Action plans -----------------------------------------------------------------------

def plan_list(api, req, route):
    filters = params.query(req, _kinds(M.plan_list, 'state', 'host', 'strategy'))
    return 200, {'plans': api.plan_list(**filters)}


def _plan(route):
    return params.path(route, _kinds(M.plan_get, 'plan'))['plan']


def plan_show(api, req, route):
    return 200, {'plan': api.plan_get(_plan(route))}


def plan_execute(api, req, route):
    body = params.json_body(req, _kinds(M.plan_execute, 'dry_run'))
    return 200, {'plan': api.plan_execute(_plan(route), **body)}


def plan_abort(api, req, route):
    body = params.json_body(req, _kinds(M.plan_abort, 'dry_run'))
    return 200, {'plan': api.plan_abort(_plan(route), **body)}


#: (method, path, handler): every resource of /v1.
ROUTES = [
    ('GET', '/migrations', migration_list),
    ('POST', '/migrations', migration_create),
    ('GET', '/migrations/{migration}', migration_show),
    ('GET', '/migrations/{migration}/progress', migration_progress),
    ('POST', '/migrations/{migration}/hold', migration_hold),
    ('POST', '/migrations/{migration}/resume', migration_resume),
    ('POST', '/migrations/{migration}/abort', migration_abort),
    ('POST', '/migrations/{migration}/force-complete', migration_force_complete),
    ('GET', '/hosts', host_list),
    ('POST', '/hosts/{host}/evacuate', host_evacuate),
    ('PUT', '/hosts/{host}/maintenance', host_maintenance_set),
    ('DELETE', '/hosts/{host}/maintenance', host_maintenance_unset),
    ('POST', '/hosts/{host}/health', host_health),
    ('GET', '/servers', server_list),
    ('GET', '/servers/{instance}/eligible-hosts', server_eligible_hosts),
    ('GET', '/plans', plan_list),
    ('GET', '/plans/{plan}', plan_show),
    ('POST', '/plans/{plan}/execute', plan_execute),
    ('POST', '/plans/{plan}/abort', plan_abort),
]
