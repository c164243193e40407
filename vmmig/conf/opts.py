"""The oslo.config.opts entry point: every option vmmig registers."""

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

_MODULES = (default, drivers, conductor, agent, scheduler, migration, sim, libvirt,
            upgrade_levels, coordination, ha, cli, api, nova)


def list_opts():
    merged = {}
    for module in _MODULES:
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return [(group, opts) for group, opts in merged.items()]
