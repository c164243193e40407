"""Who asks: the oslo.context request context every RPC call carries.

The CLI builds one for the local user with the roles of [cli] roles; an agent
calls the conductor with a service context; the conductor's calls to the agents
carry on the context of the request they serve (its request id). The serializer
in vmmig.rpc turns a context into a dict on the wire and back.
"""

import getpass

from oslo_context import context

from vmmig import conf

CONF = conf.CONF

#: The role of vmmig's own services (agents, the conductor's internal work).
SERVICE_ROLE = 'service'
ADMIN_ROLE = 'admin'

RequestContext = context.RequestContext


class _Made(RequestContext):
    """A context this process makes for its own calls. It does not become the
    thread's current context (oslo.context stores a new one when none is), which
    would make the thread's later calls seem to serve it; only a request that
    arrives (vmmig.rpc's serializer) is stored."""

    def update_store(self):
        pass


def new(user, roles, **kwargs):
    """A context of ``user`` with ``roles``, for calls this process makes."""
    return _Made(user_id=user, user_name=user, roles=list(roles), **kwargs)


def local_user():
    """The user running this process, as the records keep it (None in a bare container)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: no user name: the record says nobody
        return None


def cli_context():
    """The vmmig command's context: the local user, with the roles [cli] roles asserts."""
    return new(local_user(), CONF.cli.roles)


def service_context(name='vmmig'):
    """A vmmig service speaking for itself (an agent's heartbeat or progress report).

    When this thread serves an operator's request (an agent's step of a migration),
    the new context's global_request_id is that request's id: the conductor's log
    lines of the report name the request it belongs to.
    """
    serving = current()
    kwargs = {}
    if serving is not None and SERVICE_ROLE not in serving.roles:
        kwargs['global_request_id'] = serving.global_request_id or serving.request_id
    return new(name, [SERVICE_ROLE], **kwargs)


def internal_context(name='vmmig'):
    """The conductor acting on its own (a plan aborting its migrations): admin."""
    return new(name, [ADMIN_ROLE, SERVICE_ROLE])


def current():
    """The context of the request this thread serves, or None."""
    return context.get_current()


def outgoing(name='vmmig'):
    """What a service's call to another carries: the request it serves, else its own."""
    return current() or service_context(name)


def who(ctxt):
    """The user a record keeps as the one who asked (None when the context names none)."""
    return getattr(ctxt, 'user_name', None) or getattr(ctxt, 'user_id', None)


def bound(func):
    """``func``, to run in another thread as serving the request this thread serves
    (a migration the request started: the agents' log lines carry its request id).
    The other thread (a pool's, reused) serves nothing again once ``func`` returns."""
    serving = current()

    def run(*args, **kwargs):
        # update_store() called on the class: it also takes None, which clears the store.
        RequestContext.update_store(serving)
        try:
            return func(*args, **kwargs)
        finally:
            RequestContext.update_store(None)
    return run
