"""vmmig-conductor: runs migrations; talks to the agents over oslo.messaging."""

import sys

from vmmig import conf
from vmmig import config
from vmmig.conf import default as default_opts
from vmmig.db import schema
from vmmig import service


def main(argv=None):
    # --host on the command line too: one agent per host, often several on one
    # machine in a test or a simulated cluster, each told its host where it starts.
    conf.CONF.register_cli_opt(default_opts.host_opt)
    config.parse_args_or_exit('vmmig-conductor', sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig-conductor needs a transport_url: without one, the CLI runs the '
                 'conductor in its own process (the embedded mode)')
    if schema.version() is None:
        sys.exit('the database has no schema yet: run "vmmig-manage db sync" first')
    conductor = service.ConductorService()
    conductor.start()
    service.wait_for_signal([conductor])
