"""Unit tests of the vmmig CLI, and what they share: a fake conductor and a runner.

The fake stands in for ConductorAPI (the RPC client): it records every call
and keeps migrations in memory, moving them along a scripted list of states.
"""

import io
import logging
import os

from vmmig.cmd import cli
from vmmig import conf
from vmmig.db import states
from vmmig import exception

CONF = conf.CONF


class FakeConductor(object):
    """ConductorAPI's methods, in memory.

    ``script[instance]``: the records (dicts of changed fields) successive
    ``migration_get`` calls return after the submission; the last one stays.
    ``refuse[instance]``: reasons for a PrecheckFailed.
    """

    def __init__(self, script=None, refuse=None, hosts=None, eligible=None):
        self.calls = []
        self.migrations = {}
        self.script = script or {}
        self.refuse = refuse or {}
        self.hosts = hosts or []
        self.eligible = eligible or []
        self._pending = {}

    def _log(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))

    def _new(self, instance, migration_type, state, **values):
        ident = len(self.migrations) + 1
        record = dict(id=ident, uuid='00000000-0000-4000-8000-%012d' % ident,
                      instance=instance, migration_type=migration_type,
                      storage_mode='ephemeral-shared', source_host='sim-a',
                      dest_host='sim-b', state=state, reason=None, hold_reason=None,
                      options={}, created_at=1700000000.0, finished_at=None,
                      bytes_total=None, bytes_processed=None, bytes_remaining=None)
        record.update(values)
        self.migrations[ident] = record
        self._pending[ident] = [dict(s) for s in self.script.get(
            instance, [{'state': states.COMPLETED}])]
        return dict(record)

    def _find(self, migration):
        for record in self.migrations.values():
            if str(migration) in (str(record['id']), record['uuid']):
                return record
        raise exception.MigrationNotFound(migration=migration)

    def migrate_server(self, instance, migration_type, host=None, options=None,
                       hold_reason=None, requested_by=None):
        self._log('migrate_server', instance, migration_type=migration_type, host=host,
                  options=options, hold_reason=hold_reason, requested_by=requested_by)
        if instance in self.refuse:
            raise exception.PrecheckFailed(instance=instance, reasons=self.refuse[instance])
        return self._new(instance, migration_type,
                         states.HELD if hold_reason else states.QUEUED,
                         hold_reason=hold_reason, options=dict(options or {}))

    def evacuate_host(self, host, target_host=None, options=None, requested_by=None):
        self._log('evacuate_host', host, target_host=target_host, options=options,
                  requested_by=requested_by)
        return [self._new(name, 'evacuate', states.QUEUED, source_host=host)
                for name in ('web-1', 'db-1')]

    def migration_list(self, state=None, instance=None, host=None):
        self._log('migration_list', state=state, instance=instance, host=host)
        return [dict(r) for r in self.migrations.values()
                if (state is None or r['state'] == state)
                and (instance is None or r['instance'] == instance)
                and (host is None or host in (r['source_host'], r['dest_host']))]

    def migration_get(self, migration):
        self._log('migration_get', migration)
        record = self._find(migration)
        if record['state'] != states.HELD:
            pending = self._pending.get(record['id'])
            if pending:
                record.update(pending.pop(0) if len(pending) > 1 else pending[0])
        return dict(record)

    def _verb(self, verb, migration, target):
        record = self._find(migration)
        if record['state'] not in states.VERBS[verb]:
            raise exception.InvalidState(action=verb, migration=record['id'],
                                         state=record['state'],
                                         allowed=', '.join(states.VERBS[verb]))
        record['state'] = target
        return dict(record)

    def migration_abort(self, migration, requested_by=None):
        self._log('migration_abort', migration, requested_by=requested_by)
        record = self._verb('abort', migration, states.CANCELLED)
        self._pending[record['id']] = []
        return record

    def migration_hold(self, migration, reason, requested_by=None):
        self._log('migration_hold', migration, reason, requested_by=requested_by)
        return self._verb('hold', migration, states.HELD)

    def migration_resume(self, migration, requested_by=None):
        self._log('migration_resume', migration, requested_by=requested_by)
        return self._verb('resume', migration, states.QUEUED)

    def migration_force_complete(self, migration, requested_by=None):
        self._log('migration_force_complete', migration, requested_by=requested_by)
        return self._verb('force-complete', migration, states.RUNNING)

    def host_list(self):
        self._log('host_list')
        return self.hosts

    def instance_list(self, host=None):
        self._log('instance_list', host)
        return [{'name': 'web-1', 'host': 'sim-a'}]

    def host_eligible(self, instance, migration_type):
        self._log('host_eligible', instance, migration_type)
        return self.eligible

    def called(self, name):
        return [c for c in self.calls if c[0] == name]


class FakeServices(object):
    instances = []
    # What wait_idle answers; False: the time ran out with these migrations still running
    # (abort_running answers them) and these still queued.
    idle = True
    unfinished = ()
    queued_records = ()

    def __init__(self):
        self.events = []
        FakeServices.instances.append(self)

    def start(self):
        self.events.append('start')

    def wait_idle(self, timeout=None):
        self.events.append(('wait_idle', timeout))
        return self.idle

    def abort_running(self, requested_by):
        self.events.append(('abort_running', requested_by))
        return [dict(r) for r in self.unfinished]

    def queued(self):
        return [dict(r) for r in self.queued_records]

    def power_cut(self, host):
        self.events.append(('power_cut', host))

    def stop(self):
        self.events.append('stop')


class TTY(io.StringIO):
    def isatty(self):
        return True


class Result(object):
    def __init__(self, code, stdout, stderr, app):
        self.code, self.stdout, self.stderr, self.app = code, stdout, stderr, app


def run(argv, conductor, tmp_path, embedded=True, stderr=None, config='',
        services=FakeServices):
    """Run ``vmmig argv`` against ``conductor``; CONF and logging are restored after."""
    conf_file = os.path.join(str(tmp_path), 'vmmig.conf')
    with open(conf_file, 'w') as f:
        f.write('[DEFAULT]\nstate_path = %s\n' % os.path.join(str(tmp_path), 'state'))
        if not embedded:
            f.write('transport_url = rabbit://nobody@nowhere:5672/\n')
        f.write(config)
    stdout, stderr = io.StringIO(), stderr if stderr is not None else io.StringIO()
    app = cli.VmmigApp(stdout=stdout, stderr=stderr)
    app.api_factory = lambda: conductor
    app.services_factory = services
    app.sleep = lambda seconds: None
    app.clock = lambda: 1700000100.0
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = app.run(['--config-file', conf_file] + list(argv))
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        CONF.reset()
    return Result(code, stdout.getvalue(), stderr.getvalue(), app)
