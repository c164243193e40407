"""Only network volumes: nothing is copied, the same volumes are re-attached."""

from vmmig.storage import base


class VolumeOnly(base.StorageMode):
    name = 'volume-only'
