"""A real Keystone for the functional tests: its own database, keys and port, users to log in as.

tools/openstack/setup-keystone.sh installs Keystone into a virtualenv; `Keystone.start()` writes
a keystone.conf into a temporary directory, creates fernet and credential keys, syncs a fresh
database, bootstraps the admin and the identity endpoints, serves Keystone with gunicorn on a
free port of 127.0.0.1 and creates the projects and users below. `stop()` ends the server and
drops the database.
"""

import concurrent.futures
import datetime
import json
import logging
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session
import requests
import sqlalchemy as sa

from tests import fixtures as test_fixtures

LOG = logging.getLogger(__name__)

DEFAULT_VENV = os.path.join(os.environ.get('VMMIG_OPENSTACK_DIR', '/opt/vmmig-openstack'),
                            'keystone')
REGION = 'RegionOne'
DOMAIN = 'default'
ROLES = ('admin', 'member', 'reader', 'service')
SERVICE_USERS = ('vmmig', 'nova', 'placement', 'neutron', 'glance')
# user -> (its project, its roles there); the bootstrap admin ('admin' in 'admin') comes on top.
USERS = {
    'vmmig-admin': ('vmmig', ('admin',)),
    'vmmig-member': ('vmmig', ('member',)),
    'vmmig-reader': ('vmmig', ('reader',)),
    'other-admin': ('other', ('admin',)),
}
USERS.update({name: ('service', ('admin', 'service')) for name in SERVICE_USERS})
INTERFACES = ('public', 'internal', 'admin')


# Appended to gunicorn.conf.py: gunicorn runs in its own session (so that stop() can end all
# of it at once), and so would outlive a test process killed without its clean-up; this ends
# the server once the process that started it is gone.
_ORPHAN_WATCH = """
import os, signal, threading, time


def when_ready(server):
    def watch():
        while os.getppid() == %(parent)d:
            time.sleep(1)
        os.killpg(0, signal.SIGKILL)
    threading.Thread(target=watch, daemon=True).start()
"""


class KeystoneError(Exception):
    """Keystone did not come up or refused a set-up step; the message ends with its log tail."""


class DatabaseUnavailable(KeystoneError):
    """The SQL server for Keystone's database cannot be reached."""


def installed(venv=DEFAULT_VENV):
    """Whether tools/openstack/setup-keystone.sh has built the virtualenv ``venv``."""
    return all(os.access(os.path.join(venv, 'bin', exe), os.X_OK)
               for exe in ('keystone-manage', 'gunicorn'))


class Keystone(object):
    """One Keystone for a test session; ``start()`` it, ``stop()`` it (also a context manager).

    ``users`` maps each user name to its password, ``projects`` each project name to its id;
    ``session(user)``, ``token(user)`` and ``auth_env(user)`` log in as a user on its project.
    """

    def __init__(self, venv=DEFAULT_VENV, backend='postgresql', workers=3, start_timeout=90,
                 conf=None):
        """``conf``: {section: {option: value}} written over the keystone.conf made here."""
        self.venv = venv
        self.conf_overrides = conf or {}
        self.backend = backend
        self.workers = workers
        self.start_timeout = start_timeout
        self.users = {}
        self.projects = {}
        self.home = {}          # user -> its project's name
        self.port = None
        self.url = None
        self.auth_url = None
        self.log_path = None
        self.start_seconds = None
        self.database_name = None   # kept after stop(), which drops the database
        self._dir = None
        self._conf = None
        self._db_admin = None
        self._db_name = None
        self._server = None
        self._manager = None
        self._log = None

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if not installed(self.venv):
            raise KeystoneError('Keystone is not installed in %s: run '
                                'tools/openstack/setup-keystone.sh' % self.venv)
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        LOG.info('Keystone at %s started in %.1f s', self.auth_url, self.start_seconds)

    def _start(self):
        self._dir = tempfile.mkdtemp(prefix='vmmig-keystone-')
        self.log_path = os.path.join(self._dir, 'keystone.log')
        self._log = open(self.log_path, 'ab', buffering=0)
        database_url = self._create_database()
        # The socket is ours until gunicorn inherits it: no other test run can take the port
        # between choosing and serving it.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.auth_url = self.url + '/v3'
        self._conf = self._write_conf(database_url)
        admin_password = secrets.token_urlsafe(16)
        # One keystone-manage process: keys, then schema and bootstrap while gunicorn loads
        # the application beside it (Keystone refuses to start without fernet keys, and
        # reads the database only at the first request).
        keys_ready = os.path.join(self._dir, 'keys-ready')
        manage = self._manager = self._manage([
            ('fernet_setup',) + self._owner(),
            ('credential_setup',) + self._owner(),
            keys_ready,
            ('db_sync',),
            ('bootstrap', '--bootstrap-username', 'admin',
             '--bootstrap-password', admin_password,
             '--bootstrap-project-name', 'admin',
             '--bootstrap-role-name', 'admin',
             '--bootstrap-region-id', REGION,
             '--bootstrap-public-url', self.auth_url,
             '--bootstrap-internal-url', self.auth_url,
             '--bootstrap-admin-url', self.auth_url)])
        try:
            deadline = time.monotonic() + self.start_timeout
            while not os.path.exists(keys_ready):
                if manage.poll() is not None or time.monotonic() > deadline:
                    self._wait_for_manage(manage, 0)
                    raise KeystoneError('keystone-manage made no keys in %s s%s'
                                        % (self.start_timeout, self._log_tail()))
                time.sleep(0.05)
            self._server = self._spawn_server(listener)
        finally:
            listener.close()
        self._wait_for_manage(manage, self.start_timeout)
        self.users['admin'] = admin_password
        self.home['admin'] = 'admin'
        self._wait_until_serving()
        self._populate()

    def stop(self):
        """End the server, drop the database, remove the keys and config (idempotent)."""
        if self._manager is not None and self._manager.poll() is None:
            self._manager.kill()
            self._manager.wait()
        self._manager = None
        if self._server is not None:
            # Keystone's workers linger for seconds after gunicorn asks them to exit, and hold
            # nothing that needs a clean exit: the whole process group goes at once.
            try:
                os.killpg(self._server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._server.wait()
            self._server = None
        if self._db_name is not None:
            with self._db_admin.connect() as conn:
                if self._db_admin.dialect.name == 'postgresql':
                    conn.exec_driver_sql('DROP DATABASE IF EXISTS %s WITH (FORCE)'
                                         % self._db_name)
                else:
                    conn.exec_driver_sql('DROP DATABASE IF EXISTS %s' % self._db_name)
            self._db_admin.dispose()
            self._db_name = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- the steps of start() ------------------------------------------------------------------

    def _create_database(self):
        server = test_fixtures.SERVER_URLS[self.backend]
        name = 'keystone_%s' % uuid.uuid4().hex[:12]
        try:
            self._db_admin = sa.create_engine(server, isolation_level='AUTOCOMMIT')
            with self._db_admin.connect() as conn:
                conn.exec_driver_sql('CREATE DATABASE %s' % name)
        except Exception as e:  # noqa: any driver error means the server is not usable
            raise DatabaseUnavailable('%s for Keystone is not reachable: %s'
                                      % (self.backend, e))
        self._db_name = self.database_name = name
        return str(sa.engine.make_url(server).set(database=name)
                   .render_as_string(hide_password=False))

    def _write_conf(self, database_url):
        path = os.path.join(self._dir, 'keystone.conf')
        sections = {
            'DEFAULT': {'use_stderr': 'true', 'debug': 'false'},
            'database': {'connection': database_url},
            'token': {'provider': 'fernet', 'expiration': '3600'},
            'fernet_tokens': {'key_repository': os.path.join(self._dir, 'fernet-keys')},
            'fernet_receipts': {'key_repository': os.path.join(self._dir, 'fernet-keys')},
            'credential': {'key_repository': os.path.join(self._dir, 'credential-keys')},
            # The fewest bcrypt rounds: every log-in hashes, and the tests log in often.
            'identity': {'password_hash_rounds': '4'},
        }
        for section, options in self.conf_overrides.items():
            sections.setdefault(section, {}).update(options)
        with open(path, 'w') as f:
            for section, options in sections.items():
                f.write('[%s]\n' % section)
                for key, value in options.items():
                    f.write('%s = %s\n' % (key, value))
        for name in ('fernet-keys', 'credential-keys'):
            os.mkdir(os.path.join(self._dir, name), 0o700)
        return path

    @staticmethod
    def _owner():
        return ('--keystone-user', pwd.getpwuid(os.getuid()).pw_name,
                '--keystone-group', grp.getgrgid(os.getgid()).gr_name)

    def _manage(self, commands):
        """Start keystone-manage's commands, one after the other in one process."""
        # -I: the script's folder must not come first on the path (it holds a keystone.py).
        argv = [os.path.join(self.venv, 'bin', 'python'), '-I',
                os.path.join(os.path.dirname(os.path.abspath(__file__)), 'keystone_manage.py'),
                self._conf, json.dumps(commands)]
        return subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                env=self._env(), cwd=self._dir)

    def _wait_for_manage(self, manage, timeout):
        try:
            returncode = manage.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            manage.kill()
            manage.wait()
            raise KeystoneError('keystone-manage did not finish in %s s%s'
                                % (self.start_timeout, self._log_tail()))
        if returncode != 0:
            raise KeystoneError('keystone-manage failed (exit %s)%s'
                                % (returncode, self._log_tail()))

    def _env(self):
        env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=self._conf, PYTHONWARNINGS='ignore')
        env.pop('OS_KEYSTONE_CONFIG_DIR', None)
        return env

    def _spawn_server(self, listener):
        fd = listener.fileno()
        # Keystone parses the process's command line as its own options, so gunicorn gets
        # none: it reads ./gunicorn.conf.py instead.
        settings = {'bind': ['fd://%d' % fd], 'workers': self.workers, 'worker_class': 'sync',
                    'preload_app': True, 'timeout': 120, 'graceful_timeout': 5,
                    'accesslog': '-', 'proc_name': 'vmmig-keystone',
                    # One control socket per user would be shared by every test run's server.
                    'control_socket_disable': True,
                    'wsgi_app': 'keystone.wsgi.api:application'}
        with open(os.path.join(self._dir, 'gunicorn.conf.py'), 'w') as f:
            for key, value in settings.items():
                f.write('%s = %r\n' % (key, value))
            f.write(_ORPHAN_WATCH % {'parent': os.getpid()})
        argv = [os.path.join(self.venv, 'bin', 'gunicorn')]
        self._log.write(('--- gunicorn %r\n' % settings).encode())
        return subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                pass_fds=(fd,), env=self._env(), cwd=self._dir,
                                start_new_session=True)

    def _wait_until_serving(self):
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise KeystoneError('gunicorn serving Keystone exited with %s%s'
                                    % (self._server.returncode, self._log_tail()))
            try:
                r = requests.get(self.auth_url, timeout=5)
                if r.status_code == 200:
                    return
                last = 'HTTP %s' % r.status_code
            except requests.RequestException as e:
                last = e
            time.sleep(0.1)
        raise KeystoneError('Keystone at %s did not answer in %s s (last: %s)%s'
                            % (self.auth_url, self.start_timeout, last, self._log_tail()))

    def _log_tail(self, lines=40):
        try:
            with open(self.log_path, errors='replace') as f:
                tail = f.readlines()[-lines:]
        except OSError as e:
            return '\n(no Keystone log: %s)' % e
        return '\n--- last lines of %s:\n%s' % (self.log_path, ''.join(tail))

    def _populate(self):
        admin = self.session('admin')
        self.projects['admin'] = admin.get_project_id()
        roles = {r['name']: r['id']
                 for r in self._call(admin, 'GET', '/roles').json()['roles']}
        for role in ROLES:
            if role not in roles:
                roles[role] = self._call(admin, 'POST', '/roles', {'role': {'name': role}}
                                         ).json()['role']['id']
        for project in sorted({p for p, _roles in USERS.values()}):
            body = {'project': {'name': project, 'domain_id': DOMAIN,
                                'description': 'vmmig functional tests'}}
            self.projects[project] = self._call(admin, 'POST', '/projects', body
                                                ).json()['project']['id']

        def add_user(name):
            project, user_roles = USERS[name]
            password = secrets.token_urlsafe(16)
            body = {'user': {'name': name, 'password': password, 'domain_id': DOMAIN,
                             'default_project_id': self.projects[project]}}
            user_id = self._call(admin, 'POST', '/users', body).json()['user']['id']
            for role in user_roles:
                self._call(admin, 'PUT', '/projects/%s/users/%s/roles/%s'
                           % (self.projects[project], user_id, roles[role]))
            return name, project, password

        # As many requests at once as there are workers (one request each: Keystone is served
        # by single-threaded processes, as its own deployments do).
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for name, project, password in pool.map(add_user, sorted(USERS)):
                self.users[name] = password
                self.home[name] = project

    def _call(self, sess, method, path, body=None):
        try:
            return sess.request(self.auth_url + path, method, json=body, raise_exc=True)
        except Exception as e:
            raise KeystoneError('%s %s: %s%s' % (method, path, e, self._log_tail(15)))

    # -- what the tests use --------------------------------------------------------------------

    def session(self, user, project=None):
        """A keystoneauth1 Session logged in (v3 password) as ``user`` on ``project``.

        ``project`` is by default the user's own project (see USERS; 'admin' for 'admin').
        """
        auth = v3.Password(auth_url=self.auth_url, username=user,
                           password=self.users[user], user_domain_id=DOMAIN,
                           project_name=project or self.home[user],
                           project_domain_id=DOMAIN)
        return ks_session.Session(auth=auth)

    def token(self, user):
        """A token of ``user`` scoped to its own project."""
        return self.session(user).get_token()

    def auth_env(self, user):
        """The OS_* environment variables with which a client logs in as ``user``."""
        return {
            'OS_AUTH_URL': self.auth_url,
            'OS_AUTH_TYPE': 'password',
            'OS_IDENTITY_API_VERSION': '3',
            'OS_USERNAME': user,
            'OS_PASSWORD': self.users[user],
            'OS_PROJECT_NAME': self.home[user],
            'OS_USER_DOMAIN_ID': DOMAIN,
            'OS_PROJECT_DOMAIN_ID': DOMAIN,
            'OS_REGION_NAME': REGION,
            'OS_INTERFACE': 'public',
        }

    def short_lived_token(self, user, seconds):
        """A token of ``user`` on its project that Keystone stops accepting after ``seconds``.

        Keystone caps a token's expiry at that of the application credential it was issued
        for, so the user makes an application credential expiring in ``seconds`` and logs in
        with it: the token carries the user's roles on the project (its methods say
        'application_credential', and it may not create trusts or more credentials).
        """
        sess = self.session(user)
        expires = (datetime.datetime.now(datetime.timezone.utc)
                   + datetime.timedelta(seconds=seconds))
        body = {'application_credential': {
            'name': 'short-lived-%s' % uuid.uuid4().hex[:8],
            'expires_at': expires.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}}
        cred = self._call(sess, 'POST', '/users/%s/application_credentials'
                          % sess.get_user_id(), body).json()['application_credential']
        auth = v3.ApplicationCredential(auth_url=self.auth_url,
                                        application_credential_id=cred['id'],
                                        application_credential_secret=cred['secret'])
        return ks_session.Session(auth=auth).get_token()

    def register_service(self, name, type, url):
        """Register service ``name`` of ``type`` with public, internal and admin endpoints at
        ``url`` in RegionOne; registering it again replaces its endpoints."""
        admin = self.session('admin')
        services = self._call(admin, 'GET', '/services?type=%s' % type).json()['services']
        found = [s for s in services if s.get('name') == name]
        if found:
            service_id = found[0]['id']
            endpoints = self._call(admin, 'GET', '/endpoints?service_id=%s' % service_id
                                   ).json()['endpoints']
            for endpoint in endpoints:
                self._call(admin, 'DELETE', '/endpoints/%s' % endpoint['id'])
        else:
            body = {'service': {'name': name, 'type': type, 'enabled': True}}
            service_id = self._call(admin, 'POST', '/services', body).json()['service']['id']
        for interface in INTERFACES:
            body = {'endpoint': {'service_id': service_id, 'interface': interface,
                                 'url': url, 'region_id': REGION, 'enabled': True}}
            self._call(admin, 'POST', '/endpoints', body)
