"""Exceptions of vmmig: one base with a message template, one subclass per kind of failure.

Every exception can cross the RPC boundary (oslo.messaging re-raises the
classes listed in ``allowed_remote_exmods``), so the CLI prints the same
sentence the conductor wrote.
"""

import logging

LOG = logging.getLogger(__name__)


class VmmigException(Exception):
    """Base: ``msg_fmt`` is filled from the keyword arguments.

    A template that does not fit its arguments must not hide the original
    failure, so formatting errors fall back to the bare template.
    """

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                LOG.exception("Bad arguments for %s: %s", type(self).__name__, kwargs)
                message = self.msg_fmt
        self.message = message
        super().__init__(message)


class Invalid(VmmigException):
    msg_fmt = "Invalid request: %(reason)s"
    code = 400


class InvalidOption(Invalid):
    msg_fmt = "Invalid value %(value)r for %(option)s: %(reason)s"


class InvalidArgument(Invalid):
    """An RPC call's argument has the wrong type or lies out of range (vmmig.arguments)."""

    msg_fmt = "Invalid argument %(argument)s of %(method)s: %(reason)s"


class InvalidConfigFile(Invalid):
    msg_fmt = "Configuration file %(path)s cannot be used: %(reason)s"


class InvalidName(Invalid):
    """A name (of a VM, disk, host, volume) that breaks the rule of vmmig.names."""

    msg_fmt = "Invalid %(kind)s %(value)s: %(reason)s"


class InvalidDefinition(Invalid):
    """A domain definition the agent was asked to define holds what the VM may not have."""

    msg_fmt = "The definition of %(instance)s is refused on %(host)s: %(reasons)s"


class DriverNotFound(Invalid):
    msg_fmt = ("%(option)s names %(name)r, which is not %(what)s. "
               "Choices: %(choices)s")


class UnsupportedCombination(Invalid):
    msg_fmt = ("%(migration_type)s migration is not possible for storage mode "
               "%(storage_mode)s: %(reason)s")


class NotFound(VmmigException):
    msg_fmt = "Not found: %(what)s"
    code = 404


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance)s could not be found."


class HostNotFound(NotFound):
    msg_fmt = "Host %(host)s could not be found."


class MigrationNotFound(NotFound):
    msg_fmt = "Migration %(migration)s could not be found."


class InvalidState(Invalid):
    msg_fmt = ("Cannot %(action)s migration %(migration)s while it is %(state)s; "
               "allowed from: %(allowed)s")
    code = 409


class StateConflict(VmmigException):
    """A guarded state change lost the race: someone else moved the record."""

    msg_fmt = ("Migration %(migration)s is no longer %(expected)s "
               "(it is %(actual)s); the change to %(target)s was not made.")
    code = 409


class PrecheckFailed(Invalid):
    """Every reason a request was refused for, kept as a list in ``reasons``.

    The keyword-only signature lets oslo.messaging rebuild it on the client
    side as ``PrecheckFailed(message, **kwargs)``.
    """

    msg_fmt = "Migration of %(instance)s refused: %(reasons_text)s"

    def __init__(self, message=None, instance=None, reasons=(), **kwargs):
        self.reasons = list(reasons)
        kwargs.pop('reasons_text', None)
        super().__init__(message, instance=instance, reasons=self.reasons,
                         reasons_text='; '.join(self.reasons), **kwargs)


class NoRoom(PrecheckFailed):
    """The destination checked had room, but migrations recorded since took it."""


class MigrationFailed(VmmigException):
    msg_fmt = "Migration %(migration)s failed: %(reason)s"


class MigrationCancelled(MigrationFailed):
    msg_fmt = "Migration %(migration)s was cancelled: %(reason)s"


class HypervisorError(VmmigException):
    msg_fmt = "Hypervisor on %(host)s: %(reason)s"


class HostServedElsewhere(Invalid):
    msg_fmt = ("Host %(host)s is up and served by agent process %(server)s, which still "
               "answers; %(agent)s may not register it (stop that agent first)")
    code = 409


class RouteRefused(VmmigException):
    """A message reached an RPC server's queue other than through its topic's exchanges
    (vmmig.rpc.RoutedDispatcher)."""

    msg_fmt = ("%(method)s refused: it was delivered by exchange %(exchange)s, not "
               "through %(allowed)s, the only ones whose publishers the broker checks")
    code = 403


class HostNotServed(VmmigException):
    msg_fmt = ("Agent process %(agent)s does not serve host %(host)s (it serves "
               "%(served)s): the host registered elsewhere since")


# Action plans and maintenance (vmmig/plans) -------------------------------------

class PlanNotFound(NotFound):
    msg_fmt = "Action plan %(plan)s could not be found."


class PlanInvalidState(Invalid):
    msg_fmt = ("Cannot %(action)s action plan %(plan)s while it is %(state)s; "
               "allowed from: %(allowed)s")
    code = 409


class PlanStateConflict(VmmigException):
    """A guarded change of a plan lost the race: someone else moved it."""

    msg_fmt = ("Action plan %(plan)s is no longer %(expected)s (it is %(actual)s); "
               "the change to %(target)s was not made.")
    code = 409


class HostInMaintenance(Invalid):
    msg_fmt = "Host %(host)s is already in maintenance%(why)s."
    code = 409


class HostNotInMaintenance(Invalid):
    msg_fmt = "Host %(host)s is not in maintenance; there is nothing to unset."
    code = 409


class ActionAlreadyRecorded(VmmigException):
    """The migration of a plan's action exists already (another conductor, or this one
    before a restart, recorded it): it is linked, never recorded twice."""

    msg_fmt = "Action %(action)s of a plan is migration %(migration)s already."
    code = 409


class PolicyNotAuthorized(VmmigException):
    """A request's roles do not pass the policy rule of what it asked (vmmig.policy)."""

    msg_fmt = ("Policy rule %(rule)s refused %(action)s to user %(user)s with roles "
               "%(roles)s")
    code = 403


# The nova backend (vmmig/backends/nova) -----------------------------------------

class NovaUnavailable(VmmigException):
    """Nova (or the Keystone that vouches for vmmig there) does not answer."""

    msg_fmt = "Nova cannot be reached (%(where)s): %(error)s"
    code = 503


class NovaAuthFailed(VmmigException):
    msg_fmt = ("Keystone refused vmmig's credentials for Nova ([nova] username %(user)s, "
               "auth_url %(auth_url)s): %(error)s")
    code = 503


class NovaRefused(Invalid):
    """Nova answered a request with a refusal (a 4xx): its words are kept."""

    msg_fmt = "Nova refused to %(action)s: %(error)s"
    code = 409


class ServerNotInNova(NotFound):
    msg_fmt = "Nova knows no server %(server)s (instance %(instance)s): %(error)s"
