"""All vmmig options, one module per group; ``CONF`` has them registered."""

from oslo_config import cfg

from vmmig.conf import agent
from vmmig.conf import api
from vmmig.conf import cli
from vmmig.conf import conductor
from vmmig.conf import coordination
from vmmig.conf import default
from vmmig.conf import drivers
from vmmig.conf import ha
from vmmig.conf import libvirt
from vmmig.conf import migration
from vmmig.conf import nova
from vmmig.conf import scheduler
from vmmig.conf import sim
from vmmig.conf import upgrade_levels

CONF = cfg.CONF

for _module in (default, drivers, conductor, agent, scheduler, migration, sim, libvirt,
                upgrade_levels, coordination, ha, cli, api, nova):
    _module.register_opts(CONF)
