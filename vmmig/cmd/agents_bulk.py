"""Many simulated hosts' agents in one process: large sim clusters on one machine.

One agent per host (its own driver, registration and heartbeats) behind one RPC
server for the process, which registers its hosts under its ``--name``
(vmmig.agent.router). Only for the sim hypervisor: a real host runs one
vmmig-agent of its own. Used by benchmarks/orchestration.py (100 agents in a
few processes) and the functional tests.

    python -m vmmig.cmd.agents_bulk --config-file vmmig.conf --hosts h000,h001
"""

import sys

from oslo_config import cfg

from vmmig import conf
from vmmig import config
from vmmig.hypervisor.sim import cluster
from vmmig import service

CONF = conf.CONF

cli_opts = [
    cfg.ListOpt('hosts', default=[],
                help='Simulated hosts to serve; unset means every host of [sim] '
                     'cluster_file.'),
    cfg.StrOpt('name',
               help='RPC server name of this process; it must differ from every host '
                    'name and from the other agent processes. Default: agents-<first '
                    'host served>, stable across restarts.'),
]


def main(argv=None):
    CONF.register_cli_opts(cli_opts)
    config.parse_args_or_exit('vmmig.cmd.agents_bulk', sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig.cmd.agents_bulk needs a transport_url')
    if CONF.drivers.hypervisor != 'sim':
        sys.exit('vmmig.cmd.agents_bulk serves simulated hosts only ([drivers] '
                 'hypervisor = sim); a real host runs its own vmmig-agent')
    hosts = CONF.hosts or sorted(cluster.load(CONF.sim.cluster_file)['hosts'])
    if not hosts:
        sys.exit('vmmig.cmd.agents_bulk: no hosts to serve (--hosts, [sim] cluster_file)')
    name = CONF.name or 'agents-%s' % hosts[0]
    if name in hosts:
        sys.exit('vmmig.cmd.agents_bulk: --name %s is one of the hosts served' % name)
    group = service.AgentGroupService(name, hosts)
    group.start()
    service.wait_for_signal([group])


if __name__ == '__main__':
    main()
