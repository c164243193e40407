"""Many simulated hosts' agents in one process: large sim clusters on one machine.

One AgentService per host, all sharing the process's transport. Only for the
sim hypervisor: a real host runs one vmmig-agent of its own. Used by
benchmarks/orchestration.py (100 agents in a few processes).

    python -m vmmig.cmd.agents_bulk --config-file vmmig.conf --hosts h000,h001
"""

from concurrent import futures
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
]


def _start(host):
    agent = service.AgentService(host)
    agent.start()
    return agent


def _stop_all(agents):
    # One by one, each idle RPC server would take seconds to notice its stop.
    with futures.ThreadPoolExecutor(max(1, len(agents))) as pool:
        list(pool.map(lambda agent: agent.stop(), agents))


def main(argv=None):
    CONF.register_cli_opts(cli_opts)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if config.is_embedded():
        sys.exit('vmmig.cmd.agents_bulk needs a transport_url')
    if CONF.drivers.hypervisor != 'sim':
        sys.exit('vmmig.cmd.agents_bulk serves simulated hosts only ([drivers] '
                 'hypervisor = sim); a real host runs its own vmmig-agent')
    hosts = CONF.hosts or sorted(cluster.load(CONF.sim.cluster_file)['hosts'])
    # Registration waits for the conductor's answer: start them side by side.
    with futures.ThreadPoolExecutor(min(16, len(hosts))) as pool:
        agents = list(pool.map(_start, hosts))
    service.wait_for_signal([_Group(agents)])


class _Group(object):
    def __init__(self, agents):
        self.agents = agents

    def stop(self):
        _stop_all(self.agents)


if __name__ == '__main__':
    main()
