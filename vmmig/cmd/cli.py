"""The ``vmmig`` operator CLI: a cliff application over the conductor's RPC API, or
over vmmig-api (HTTP, a Keystone token) when Keystone credentials (OS_AUTH_URL,
OS_CLOUD) or an endpoint (--os-endpoint, [cli] api_endpoint) are configured.

With neither, and no transport_url configured, it runs the conductor and the agents
in its own process (vmmig.embedded) and lets them finish the queued work before it
exits.
"""

import argparse
import importlib
import logging
import os
import sys
import time

from cliff import app
from cliff import commandmanager
from oslo_log import log as oslo_logging

from vmmig.cli import base
from vmmig.cli import demo
from vmmig.cli import hosts
from vmmig.cli import migrations
from vmmig.cli import plans
from vmmig.cli import servers
from vmmig import conf
from vmmig import config
from vmmig.conductor import rpcapi
from vmmig import context as vcontext
from vmmig import rpc

CONF = conf.CONF

COMMANDS = {
    'server migrate': servers.ServerMigrate,
    'server evacuate': servers.ServerEvacuate,
    'migration list': migrations.MigrationList,
    'migration show': migrations.MigrationShow,
    'migration abort': migrations.MigrationAbort,
    'migration hold': migrations.MigrationHold,
    'migration resume': migrations.MigrationResume,
    'migration force-complete': migrations.MigrationForceComplete,
    'host list': hosts.HostList,
    'host eligible': hosts.HostEligible,
    'demo': demo.Demo,
    # Host operations as action plans (vmmig/plans).
    'host maintenance set': plans.HostMaintenanceSet,
    'host maintenance unset': plans.HostMaintenanceUnset,
    'plan list': plans.PlanList,
    'plan show': plans.PlanShow,
    'plan execute': plans.PlanExecute,
    'plan abort': plans.PlanAbort,
}


def _conductor_api():
    # A context per call (its own request id): the local user, with [cli] roles.
    return rpcapi.ConductorAPI(context=vcontext.cli_context)


def _api_client(endpoint=None, cloud=None):
    """The client of vmmig-api, or None when the CLI is to speak RPC.

    Credentials come from openstacksdk's loader (clouds.yaml named by OS_CLOUD or
    --os-cloud, else the OS_* variables); ``endpoint`` overrides the catalog's. With
    an endpoint and no credentials no token is sent: a vmmig-api whose [api]
    auth_strategy is noauth takes the local user and [cli] roles from the headers.
    """
    # Imported late: the RPC path needs none of it.
    from keystoneauth1 import session as ks_session

    from vmmig.api import client

    endpoint = endpoint or CONF.cli.api_endpoint
    cloud = cloud or os.environ.get('OS_CLOUD')
    if cloud or os.environ.get('OS_AUTH_URL'):
        from openstack import config as os_config
        from openstack import exceptions as os_exc
        try:
            region = os_config.get_cloud_region(cloud=cloud, app_name='vmmig')
            session = region.get_session()
        except (os_exc.OpenStackCloudException, os_exc.ConfigException) as e:
            raise client.IdentityError(reason='the credentials are not usable: %s'
                                       % base.format_error(e))
        return client.ApiClient(session, endpoint=endpoint,
                                service_type=CONF.api.service_type,
                                interface=region.get_interface(),
                                region_name=region.get_region_name(CONF.api.service_type))
    if endpoint:
        user = vcontext.local_user()
        headers = {'X-Roles': ','.join(CONF.cli.roles)}
        if user:
            headers.update({'X-User-Name': user, 'X-User-Id': user})
        return client.ApiClient(ks_session.Session(), endpoint=endpoint,
                                service_type=CONF.api.service_type, headers=headers)
    return None


def _embedded_services():
    # Imported late: only the embedded mode needs the services' code.
    return importlib.import_module('vmmig.embedded').EmbeddedServices()


class VmmigApp(app.App):
    NAME = 'vmmig'
    LOG = logging.getLogger('vmmig.cmd.cli')

    # Seams for the tests: what builds the client and the embedded services.
    api_factory = staticmethod(_conductor_api)
    http_factory = staticmethod(_api_client)
    services_factory = staticmethod(_embedded_services)
    poll_interval = 0.5
    sleep = staticmethod(time.sleep)
    clock = staticmethod(time.time)

    def __init__(self, **kwargs):
        manager = commandmanager.CommandManager('vmmig.cli')
        for name, command in COMMANDS.items():
            manager.add_command(name, command)
        # deferred_help: `vmmig server migrate --help` is the command's help, not the
        # application's (cliff reads --help before it knows the command otherwise).
        kwargs.setdefault('deferred_help', True)
        super().__init__(description=__doc__.splitlines()[0], version=_version(),
                         command_manager=manager, **kwargs)
        self.services = None
        self._api = None
        self._cleanups = []
        # Set when the embedded services had to abort migrations to stop in time.
        self.aborted = []

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(description, version, argparse_kwargs)
        parser.add_argument('--config-file', action='append', default=[], metavar='PATH',
                            help='vmmig configuration file; may be repeated. Default: '
                                 "oslo.config's search for vmmig.conf.")
        parser.add_argument('--config-dir', action='append', default=[], metavar='DIR',
                            help='Directory of *.conf files read after --config-file.')
        parser.add_argument('--embedded-timeout', type=_seconds, default=600.0,
                            metavar='SECONDS',
                            help='Embedded mode: how long to let queued and running '
                                 'migrations finish before exiting (default: 600). Those '
                                 'still running then are aborted and rolled back (as '
                                 '`migration abort` does) before the command exits; queued '
                                 'ones stay queued for the next command.')
        parser.add_argument('--os-endpoint', metavar='URL',
                            default=os.environ.get('VMMIG_ENDPOINT'),
                            help='Call vmmig-api at this URL (default: env[VMMIG_ENDPOINT], '
                                 '[cli] api_endpoint, else the Keystone catalog when '
                                 'credentials are given, else the conductor over RPC).')
        parser.add_argument('--os-cloud', metavar='NAME',
                            help='The cloud of clouds.yaml whose credentials to use '
                                 '(default: env[OS_CLOUD]); else the OS_* variables.')
        return parser

    def configure_logging(self):
        super().configure_logging()
        # The embedded services log at INFO; an operator asked for a table, not their
        # story. -v shows it, -vv everything.
        level = {0: logging.WARNING, 1: logging.WARNING, 2: logging.INFO}.get(
            self.options.verbose_level, logging.DEBUG)
        logging.getLogger().setLevel(level)
        # An embedded conductor refusing a request is the answer, printed as one line;
        # its RPC server would add a traceback for each. -v shows them.
        logging.getLogger('oslo_messaging.rpc.server').setLevel(
            logging.CRITICAL if self.options.verbose_level <= 1 else logging.NOTSET)
        # keystoneauth warns of each discovery it retries; the one line the command
        # prints when Keystone fails says it all. -v shows them.
        logging.getLogger('keystoneauth').setLevel(
            logging.ERROR if self.options.verbose_level <= 1 else logging.NOTSET)

    def initialize_app(self, argv):
        args = []
        for path in self.options.config_file:
            args += ['--config-file', path]
        for path in self.options.config_dir:
            args += ['--config-dir', path]
        # oslo.log would log to stdout, mixed into -f json; cliff's stderr handler serves.
        config.parse_args(args, setup_logging=False)
        if CONF.log_file or CONF.log_dir:
            oslo_logging.setup(CONF, 'vmmig')
            self.configure_logging()  # oslo.log replaced the handlers; keep the console one

    @property
    def conductor(self):
        """The conductor's client; in embedded mode the services start on first use."""
        if self._api is None:
            self._api = self.http_factory(self.options.os_endpoint, self.options.os_cloud)
            if self._api is not None:
                return self._api
            if self.services is None and config.is_embedded():
                services = self.services_factory()
                services.start()
                self.services = services
            self._api = self.api_factory()
        return self._api

    @property
    def connected(self):
        """Whether a command has already reached a conductor (or started embedded ones)."""
        return self._api is not None or self.services is not None

    def add_cleanup(self, func, *args):
        """Run ``func`` once the services have stopped (the demo removes its state)."""
        self._cleanups.append((func, args))

    def shutdown(self):
        services, self.services, self._api = self.services, None, None
        try:
            if services is not None:
                try:
                    self._wait_embedded(services)
                finally:
                    services.stop()
            rpc.cleanup()
        finally:
            while self._cleanups:
                func, args = self._cleanups.pop()
                func(*args)

    def _wait_embedded(self, services):
        """Let the embedded services finish, for --embedded-timeout seconds at most.

        The process cannot leave a migration half-done behind it (a VM shut down for a
        cold migration would stay shut off until another command recovered it): what
        still runs then is aborted and rolled back here, and the records say where each
        VM is.
        """
        timeout = self.options.embedded_timeout
        if services.wait_idle(timeout=timeout):
            return
        self.stderr.write('Migrations were still running after %s s (--embedded-timeout); '
                          'aborting them.\n' % timeout)
        self.stderr.flush()
        self.aborted = services.abort_running(
            requested_by='vmmig, whose --embedded-timeout of %s s ran out' % timeout)
        for record in self.aborted:
            self.stderr.write('Migration %s of %s: %s; the VM is on %s.\n' % (
                record['id'], record['instance'], record['state'],
                record['vm_location'] or record['source_host']))
        queued = services.queued()
        if queued:
            self.stderr.write('Migration(s) %s stay queued for the next vmmig command.\n'
                              % ', '.join(str(m['id']) for m in queued))

    def run(self, argv):
        try:
            code = super().run(argv)
        finally:
            self.shutdown()
        # The command's work was cut short: say so in the exit code too.
        return code or (base.EXIT_ERROR if self.aborted else 0)


def _seconds(value):
    """--embedded-timeout: a number of seconds, zero or more."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number of seconds' % value)
    if not seconds >= 0 or seconds == float('inf'):
        raise argparse.ArgumentTypeError(
            '%s: give a number of seconds, zero or more' % value)
    return seconds


def _version():
    try:
        from importlib import metadata
        return metadata.version('vmmig')
    except Exception:
        return 'unknown'


def main(argv=None):
    return VmmigApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
