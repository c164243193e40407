"""The ``vmmig`` operator CLI: a cliff application over the conductor's RPC API.

With no transport_url configured it runs the conductor and the agents in its
own process (vmmig.embedded) and lets them finish the queued work before it
exits.
"""

import importlib
import logging
import sys
import time

from cliff import app
from cliff import commandmanager
from oslo_log import log as oslo_logging

from vmmig.cli import demo
from vmmig.cli import hosts
from vmmig.cli import migrations
from vmmig.cli import recoveries
from vmmig.cli import servers
from vmmig import conf
from vmmig import config
from vmmig.conductor import rpcapi
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
    'host set': hosts.HostSet,
    'recovery list': recoveries.RecoveryList,
    'demo': demo.Demo,
}


def _embedded_services():
    # Imported late: only the embedded mode needs the services' code.
    return importlib.import_module('vmmig.embedded').EmbeddedServices()


class VmmigApp(app.App):
    NAME = 'vmmig'
    LOG = logging.getLogger('vmmig.cmd.cli')

    # Seams for the tests: what builds the client and the embedded services.
    api_factory = staticmethod(rpcapi.ConductorAPI)
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

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(description, version, argparse_kwargs)
        parser.add_argument('--config-file', action='append', default=[], metavar='PATH',
                            help='vmmig configuration file; may be repeated. Default: '
                                 "oslo.config's search for vmmig.conf.")
        parser.add_argument('--config-dir', action='append', default=[], metavar='DIR',
                            help='Directory of *.conf files read after --config-file.')
        parser.add_argument('--embedded-timeout', type=float, default=600.0,
                            metavar='SECONDS',
                            help='Embedded mode: how long to let queued and running '
                                 'migrations finish before exiting (default: 600).')
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
                    idle = services.wait_idle(timeout=self.options.embedded_timeout)
                    if idle is False:
                        self.stderr.write(
                            'Migrations were still running after %s s; they stop now and '
                            'resume the next time vmmig runs embedded.\n'
                            % self.options.embedded_timeout)
                finally:
                    services.stop()
            rpc.cleanup()
        finally:
            while self._cleanups:
                func, args = self._cleanups.pop()
                func(*args)

    def run(self, argv):
        try:
            return super().run(argv)
        finally:
            self.shutdown()


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
