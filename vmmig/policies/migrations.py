"""Rules of the conductor's migration endpoints."""

from oslo_policy import policy

from vmmig.policies import base

PREFIX = 'vmmig:migration:%s'


def _rule(name, check_str, description, method='migrate_server'):
    return policy.DocumentedRuleDefault(
        name=PREFIX % name, check_str=check_str, description=description,
        operations=[{'path': method, 'method': 'RPC'}])


rules = [
    _rule('create', base.ADMIN, 'Move a VM (live, cold or evacuate), or record it held.'),
    _rule('list', base.READER, 'List migrations.', 'migration_list'),
    _rule('get', base.READER, 'Show one migration.', 'migration_get'),
    _rule('hold', base.ADMIN, 'Hold a queued migration.', 'migration_hold'),
    _rule('resume', base.ADMIN, 'Resume a held migration.', 'migration_resume'),
    _rule('abort', base.ADMIN, 'Abort a migration (rolled back).', 'migration_abort'),
    _rule('force_complete', base.ADMIN, 'Force a running live migration to complete.',
          'migration_force_complete'),
    _rule('progress', base.SERVICE, "An agent's report of a running job's progress.",
          'migration_progress'),
]


def list_rules():
    return rules
