"""The rules the others are written in: who is an admin, a reader, a vmmig service,
and which projects' users may call vmmig at all."""

from oslo_policy import policy

from vmmig import conf

CONF = conf.CONF

ADMIN = 'rule:admin_api'
READER = 'rule:reader_api'
SERVICE = 'rule:service_api'


@policy.register('operator_project')
class OperatorProjectCheck(policy.Check):
    """``operator_project:any``: the request's project is one of [api] operator_projects
    (by id or name), or that list is empty, or the request names no project.

    A Keystone token is scoped to a project; an admin of a tenant's project holds the
    admin role too, so roles alone would let any project's admin move the whole
    cloud's VMs. Requests without a project are vmmig's own CLI and services over the
    message bus, whose trust is the bus's (README, "Trust"). The project's name comes
    in the target (vmmig.policy.authorize puts it there): oslo.policy's credentials
    carry only its id.
    """

    def __call__(self, target, creds, enforcer, current_rule=None):
        allowed = CONF.api.operator_projects
        project_id = creds.get('project_id')
        project_name = target.get('project_name')
        if not allowed or (project_id is None and project_name is None):
            return True
        return project_id in allowed or project_name in allowed


rules = [
    policy.RuleDefault('operator_project', 'operator_project:any',
                       description='The request comes from a project whose users operate '
                                   'vmmig: one of [api] operator_projects (by name or id; '
                                   'empty: any project), or from no project at all (the '
                                   'vmmig CLI and services over the message bus). An '
                                   'admin token of another project is refused.'),
    policy.RuleDefault('admin_api', 'role:admin and rule:operator_project',
                       description='An administrator: moves VMs, empties hosts, runs plans. '
                                   'As Nova has its admin APIs (live migration, evacuation, '
                                   'host operations).'),
    policy.RuleDefault('reader_api', '(role:reader and rule:operator_project) or '
                                     'rule:admin_api',
                       description='Reads the records of migrations, hosts, VMs and plans. '
                                   'A member who is not a reader is refused: these are '
                                   "records of the whole cloud, as Nova's admin reads are."),
    policy.RuleDefault('service_api', '(role:service and rule:operator_project) or '
                                      'rule:admin_api',
                       description="A vmmig service (an agent) reporting its host's state, "
                                   'or an outside monitor reporting a host\'s health.'),
]


def list_rules():
    return rules
