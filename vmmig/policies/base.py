"""The rules the others are written in: who is an admin, a reader, a vmmig service."""

from oslo_policy import policy

ADMIN = 'rule:admin_api'
READER = 'rule:reader_api'
SERVICE = 'rule:service_api'

rules = [
    policy.RuleDefault('admin_api', 'role:admin',
                       description='An administrator: moves VMs, empties hosts, runs plans. '
                                   'As Nova has its admin APIs (live migration, evacuation, '
                                   'host operations).'),
    policy.RuleDefault('reader_api', 'role:reader or rule:admin_api',
                       description='Reads the records of migrations, hosts, VMs and plans. '
                                   'A member who is not a reader is refused: these are '
                                   "records of the whole cloud, as Nova's admin reads are."),
    policy.RuleDefault('service_api', 'role:service or rule:admin_api',
                       description="A vmmig service (an agent) reporting its host's state."),
]


def list_rules():
    return rules
