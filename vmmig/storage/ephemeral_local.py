"""Disks on a host's own storage: copied by live block migration or by the agents when cold."""

from vmmig.storage import base


class EphemeralLocal(base.StorageMode):
    name = 'ephemeral-local'
    block_migration = True
    refused_migration_types = {
        'evacuate': 'its disks are on the local storage of the failed host, which '
                    'nobody can read any more; only VMs on shared storage or volumes '
                    'can be rebuilt elsewhere',
    }
