"""Storage modes: what a VM's disks allow and what moves with it.

The mode follows from where the disks live: only volumes (network block
devices served outside the hosts) is volume-only; disks on the shared
instances storage are ephemeral-shared; any disk on a host's own storage
makes it ephemeral-local.
"""

LOCAL = 'local'
SHARED = 'shared'
VOLUME = 'volume'


def storage_mode_of(disks):
    locations = {d['location'] for d in disks}
    unknown = locations - {LOCAL, SHARED, VOLUME}
    if unknown:
        raise ValueError('unknown disk location(s): %s' % ', '.join(sorted(unknown)))
    if LOCAL in locations:
        return 'ephemeral-local'
    if SHARED in locations:
        return 'ephemeral-shared'
    return 'volume-only'


class StorageMode(object):
    """One storage mode. Subclasses declare what they allow and what they need."""

    name = None
    #: migration types this mode allows, with the reason for each it refuses
    refused_migration_types = {}
    #: live migration copies the local disks (block migration)
    block_migration = False
    #: both hosts must be proven to see the same instances storage
    needs_shared_storage = False

    @staticmethod
    def has_volumes(instance):
        """Volumes are connected on the destination before the VM arrives and disconnected
        from the source after it left, in every mode: a VM on local or shared disks may
        have data volumes too."""
        return any(d['location'] == VOLUME for d in instance.get('disks', []))

    def supports(self, migration_type):
        return migration_type not in self.refused_migration_types

    def refusal(self, migration_type):
        return self.refused_migration_types.get(migration_type)

    def host_reasons(self, instance, source_facts, dest_facts):
        """Reasons, from the hosts' facts alone, why this mode cannot go to ``dest``."""
        reasons = []
        if self.needs_shared_storage:
            src, dst = source_facts.get('shared_storage'), dest_facts.get('shared_storage')
            if not dst or src != dst:
                reasons.append('%s does not mount the instances storage of %s (%s vs %s)'
                               % (dest_facts.get('host'), source_facts.get('host'), dst, src))
        return reasons
