"""vmmig-conductor: runs migrations; talks to the agents over oslo.messaging."""

import sys

from vmmig import config
from vmmig.db import schema
from vmmig import service


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig-conductor needs a transport_url: without one, the CLI runs the '
                 'conductor in its own process (the embedded mode)')
    if schema.version() is None:
        sys.exit('the database has no schema yet: run "vmmig-manage db sync" first')
    conductor = service.ConductorService()
    conductor.start()
    service.wait_for_signal([conductor])
