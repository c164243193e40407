"""Loading the drivers of each vmmig namespace with stevedore.

A name that is misspelt, not installed or not enabled is an error naming the
option that asked for it and the names that would have worked.
"""

import functools
from importlib import metadata

from stevedore import driver as sd_driver

from vmmig import conf
from vmmig import exception

CONF = conf.CONF

MIGRATION = 'vmmig.migration'
STORAGE = 'vmmig.storage'
HYPERVISOR = 'vmmig.hypervisor'
FILTERS = 'vmmig.scheduler.filters'
WEIGHERS = 'vmmig.scheduler.weighers'
FENCING = 'vmmig.fencing'
STRATEGIES = 'vmmig.strategies'
HEALTH = 'vmmig.health'
BACKENDS = 'vmmig.backends'


@functools.lru_cache(maxsize=None)
def installed(namespace):
    """Names of every plugin installed in ``namespace``."""
    return tuple(sorted(ep.name for ep in metadata.entry_points(group=namespace)))


def load_class(namespace, name, option, enabled=None):
    """The plugin class ``name`` of ``namespace``; ``option`` names who asked for it."""
    choices = enabled if enabled is not None else installed(namespace)
    if name not in installed(namespace):
        raise exception.DriverNotFound(option=option, name=name, what='an installed %s plugin'
                                       % namespace, choices=', '.join(sorted(choices)))
    if enabled is not None and name not in enabled:
        raise exception.DriverNotFound(option=option, name=name, what='enabled',
                                       choices=', '.join(enabled))
    return _driver_class(namespace, name)


@functools.lru_cache(maxsize=None)
def _driver_class(namespace, name):
    # Once per name and process: the conductor looks up a dozen plugins (filters,
    # weighers, the type and the storage mode) for every request. Which names are
    # allowed is checked before, at every call, since that depends on the options.
    manager = sd_driver.DriverManager(namespace, name, invoke_on_load=False,
                                      on_load_failure_callback=_reraise)
    return manager.driver


def _reraise(_manager, entry_point, error):
    raise exception.DriverNotFound(option=entry_point.group, name=entry_point.name,
                                   what='loadable (%s)' % error,
                                   choices=', '.join(installed(entry_point.group)))


def migration_type(name):
    return load_class(MIGRATION, name, '[drivers] enabled_migration_types',
                      CONF.drivers.enabled_migration_types)


def storage_mode(name):
    return load_class(STORAGE, name, '[drivers] enabled_storage_modes',
                      CONF.drivers.enabled_storage_modes)()


def hypervisor(host):
    cls = load_class(HYPERVISOR, CONF.drivers.hypervisor, '[drivers] hypervisor')
    return cls(CONF, host)


def fencing():
    return load_class(FENCING, CONF.drivers.fencing, '[drivers] fencing')()


def validate_enabled():
    """Fail at start-up, not at the first request, when a configured name is wrong."""
    for name in CONF.drivers.enabled_migration_types:
        load_class(MIGRATION, name, '[drivers] enabled_migration_types')
    for name in CONF.drivers.enabled_storage_modes:
        load_class(STORAGE, name, '[drivers] enabled_storage_modes')
    load_class(FENCING, CONF.drivers.fencing, '[drivers] fencing')().validate()
    load_class(BACKENDS, CONF.drivers.backend, '[drivers] backend')
    for name in CONF.scheduler.enabled_filters:
        load_class(FILTERS, name, '[scheduler] enabled_filters')
    for name in CONF.scheduler.weighers:
        load_class(WEIGHERS, name, '[scheduler] weighers')
