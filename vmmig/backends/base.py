"""The contract of a backend: where a cloud's hosts and VMs come from, and who moves them.

The conductor's own work is the same on every backend: prechecks and eligible
hosts with reasons on the host and instance records, the queue, holds, limits,
plans, maintenance and HA. A backend fills those records (the agents report
them; the nova backend discovers them from Nova's API) and carries out the
migrations the dispatcher hands it. Loaded from the ``vmmig.backends`` namespace
by ``[drivers] backend``.
"""

import logging

from vmmig import conf
from vmmig import exception
from vmmig import plugins

LOG = logging.getLogger(__name__)
CONF = conf.CONF


class Backend(object):
    name = None
    #: the hosts report themselves (heartbeats): a host silent for [conductor]
    #: heartbeat_timeout is marked down. A backend that reads the hosts' state from
    #: elsewhere says False, and an unreachable source marks no host down.
    heartbeats = True
    #: agents run on the hosts (the embedded mode starts them; the prechecks ask
    #: them about the guest CPU and the shared storage)
    uses_agents = True

    def __init__(self, conductor):
        """``conductor``: the ConductorManager (its name, notifier, dispatcher)."""
        self.conductor = conductor

    @property
    def hosts(self):
        """What the prechecks and the migration context ask about a VM on its host:
        ``get_instance(host, name)`` (raise when it cannot be read) and
        ``find_instance(host, name)`` (None when absent)."""
        raise NotImplementedError

    def start(self):
        """Start the background work (a periodic discovery)."""

    def stop(self):
        """Stop it."""

    def maintenance_changed(self, host):
        """``host`` entered or left maintenance in the records: tell the cloud, if it
        places VMs by itself (the agents' hosts take only what vmmig places)."""

    def rediscover(self, instance):
        """A request named ``instance``, which the records do not hold: look at the
        hosts again now, or raise InstanceNotFound (the agents report by themselves:
        nothing to look at)."""
        raise exception.InstanceNotFound(instance=instance)

    def execute(self, mtype, ctx):
        """Carry out one migration (record in ``preparing``) to a terminal state."""
        raise NotImplementedError

    def recover(self, mtype, ctx):
        """Finish a migration whose conductor stopped, from what the hosts show."""
        raise NotImplementedError

    def abort(self, mtype, record):
        """An operator asked to abort ``record`` (running or preparing): stop the work
        under way if it can be; the request is kept in the record either way."""

    def force_complete(self, record):
        """Make a running live migration finish; False when no job can be told yet."""
        return False


def tell_maintenance(backend, host):
    """``backend.maintenance_changed(host)``, which may fail: the records are the
    truth and already changed, and a cloud not told now is told by the backend's next
    discovery."""
    try:
        backend.maintenance_changed(host)
    except exception.VmmigException as e:
        LOG.warning('Host %s: the %s backend was not told of its maintenance now (its '
                    'next discovery tells it): %s', host, backend.name, e)


def load(conductor):
    cls = plugins.load_class(plugins.BACKENDS, CONF.drivers.backend, '[drivers] backend')
    return cls(conductor)


def uses_agents():
    """Whether the configured backend runs agents (read without a conductor)."""
    return plugins.load_class(plugins.BACKENDS, CONF.drivers.backend,
                              '[drivers] backend').uses_agents
