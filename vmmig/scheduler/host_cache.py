"""The hosts as the scheduler sees them, read again only where they changed.

Every request without a destination ranks every host. Reading all of them (their
facts are JSON) for each request cost a busy conductor about 6 % of its CPU; the
``updated_at`` of a host moves with every change of its facts, state or
maintenance, so a look at the names and times tells which rows to read again.
"""

import threading

from vmmig.db import api as db


class HostCache(object):

    def __init__(self):
        self._lock = threading.Lock()
        self._hosts = {}

    def hosts(self, versions=None):
        """Every host, by name, as db.host_list() returns them (do not change them).

        ``versions``: what db.host_versions() returned just now, if the caller has it.
        """
        versions = db.host_versions() if versions is None else versions
        with self._lock:
            known = self._hosts
            stale = [name for name, updated_at in versions.items()
                     if name not in known or known[name]['updated_at'] != updated_at]
        fresh = {h['name']: h for h in db.host_list(stale)} if stale else {}
        with self._lock:
            for name in [n for n in self._hosts if n not in versions]:
                del self._hosts[name]
            self._hosts.update(fresh)
            hosts = dict(self._hosts)
        return [hosts[name] for name in sorted(versions) if name in hosts]
