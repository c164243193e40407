"""vmmig-agent: serves one hypervisor host (named by [DEFAULT] host)."""

import sys

from vmmig import config
from vmmig import service


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig-agent needs a transport_url: without one, the CLI runs the agents '
                 'in its own process (the embedded mode)')
    agent = service.AgentService()
    agent.start()
    service.wait_for_signal([agent])
