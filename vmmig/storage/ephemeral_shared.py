"""Disks on the instances storage both hosts mount: nothing is copied."""

from vmmig.storage import base


class EphemeralShared(base.StorageMode):
    name = 'ephemeral-shared'
    needs_shared_storage = True
