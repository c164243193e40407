"""vmmig-agent: serves one hypervisor host (named by [DEFAULT] host)."""

import sys

from vmmig import conf
from vmmig import config
from vmmig.conf import default as default_opts
from vmmig import service


def main(argv=None):
    # --host on the command line too: one agent per host, often several on one
    # machine in a test or a simulated cluster, each told its host where it starts.
    conf.CONF.register_cli_opt(default_opts.host_opt)
    config.parse_args_or_exit('vmmig-agent', sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig-agent needs a transport_url: without one, the CLI runs the agents '
                 'in its own process (the embedded mode)')
    agent = service.AgentService()
    agent.start()
    service.wait_for_signal([agent])
