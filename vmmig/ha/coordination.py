"""Which conductor's HA monitor is the active one: the holder of one tooz lock.

Every tooz backend offers locks (file, Redis, PostgreSQL, MySQL, ZooKeeper,
etcd); leader election only some, and on Redis tooz elects a leader by holding a
lock much like this one. One mechanism, the same on every backend, is what is
tested: how a dead holder's lock is freed is the backend's (see README, "High
availability").
"""

import logging
import os

from oslo_utils import encodeutils
import tooz
from tooz import coordination

from vmmig import conf

LOG = logging.getLogger(__name__)
CONF = conf.CONF

LOCK_NAME = b'vmmig-ha-monitor'


def backend_url():
    """[coordination] backend_url, or a file backend under the state path."""
    if CONF.coordination.backend_url:
        return CONF.coordination.backend_url
    path = os.path.join(os.path.expanduser(CONF.state_path), 'coordination')
    os.makedirs(path, exist_ok=True)
    return 'file://' + path


class Leadership(object):
    """``active()`` says, at each call, whether this member holds the lock; it tries to
    take the lock when free and keeps it alive (heartbeat) while held."""

    def __init__(self, member_id):
        self.member_id = member_id
        self._coordinator = None
        self._lock = None
        self._held = False

    def _connect(self):
        url = backend_url()
        self._coordinator = coordination.get_coordinator(
            url, encodeutils.safe_encode(self.member_id))
        self._coordinator.start()
        self._lock = self._coordinator.get_lock(LOCK_NAME)

    def active(self):
        try:
            if self._coordinator is None:
                self._connect()
            self._coordinator.heartbeat()
            if self._held and not self._still_owner():
                LOG.error('HA monitor of %s: the coordination lock was lost; another '
                          'conductor may be the active monitor now', self.member_id)
                self._held = False
            if not self._held:
                self._held = bool(self._lock.acquire(blocking=False))
                if self._held:
                    LOG.warning('HA monitor of %s is now the active one (%s)',
                                self.member_id, self._coordinator.__class__.__name__)
        except Exception as e:  # noqa: an unreachable backend means: not active
            if self._held:
                LOG.error('HA monitor of %s: coordination backend failed (%s); no longer '
                          'active', self.member_id, e)
            else:
                LOG.warning('HA monitor of %s: coordination backend failed: %s',
                            self.member_id, e)
            self._held = False
            self._reset()
        return self._held

    def _still_owner(self):
        try:
            return self._lock.is_still_owner()
        except tooz.NotImplemented:
            # The SQL backends: the lock is the session's, and ends with it; a session
            # that broke shows as a failed heartbeat above.
            return True

    def _reset(self):
        coordinator, self._coordinator, self._lock = self._coordinator, None, None
        if coordinator is not None:
            try:
                coordinator.stop()
            except Exception:  # noqa: it is being dropped because it failed
                pass

    def stop(self):
        if self._held:
            try:
                self._lock.release()
            except Exception:  # noqa: stopping; the backend frees it in the end
                pass
        self._held = False
        self._reset()
