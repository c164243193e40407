"""Client of a host agent's RPC API (the conductor and peer agents use it).

Every call goes to the agent process of one named host: ``server=host``, or,
for a process that serves several hosts, ``server=<its name>`` with ``host``
among the arguments (see vmmig.conductor.agent_addresses).

Version history:

* 1.0 - Initial version.
* 1.1 - job_status takes ``wait``: the agent answers when the job ends, or after
  that many seconds (a long poll: the conductor learns of the end at once).
* 1.2 - Every method takes ``host`` when the process serves several hosts.
* 1.3 - offer_files takes ``peer``: the one address that may fetch the files, each
  once; the offer records each file's size and SHA-256, which the receiver checks.

Every call carries the request context of the request it serves (vmmig.context:
its request id shows in the agent's log lines), else the caller's service context.
"""

from vmmig import conf
from vmmig import context as vcontext
from vmmig import exception
from vmmig import rpc

CONF = conf.CONF

RPC_API_VERSION = '1.3'


class AgentAPI(object):

    def __init__(self, server_of=None, forget_server=None):
        """``server_of(host)``: the RPC server serving ``host``; unset, the host's name.
        ``forget_server(host)``: drop what server_of knows of ``host``, which a process
        that no longer serves it refused."""
        self.client = rpc.get_client(CONF.agent.topic, RPC_API_VERSION, cap_option='agent')
        self.server_of = server_of or (lambda host: host)
        self.forget_server = forget_server

    def _prepare(self, host, kwargs, **options):
        server = self.server_of(host)
        if server != host:
            # A process of several hosts (1.2, new with it: no older one to talk to).
            rpc.require_version(self.client, '1.2', 'agent', 'host %s, served by agent '
                                'process %s,' % (host, server))
            kwargs['host'] = host
            # At least 1.2; a call that needs a later version keeps it.
            options['version'] = max(options.get('version') or '1.2', '1.2',
                                     key=lambda v: tuple(map(int, v.split('.'))))
        return self.client.prepare(server=server, **options)

    def _call(self, host, method, timeout=None, version=None, **kwargs):
        options = {'version': version} if version else {}
        options['timeout'] = timeout or CONF.conductor.rpc_timeout
        sent = dict(kwargs)
        try:
            return self._prepare(host, sent, **options).call(vcontext.outgoing(), method, **sent)
        except exception.HostNotServed:
            if self.forget_server is None:
                raise
            # The host registered elsewhere since we learnt its address: ask again once.
            self.forget_server(host)
            sent = dict(kwargs)
            return self._prepare(host, sent, **options).call(vcontext.outgoing(), method, **sent)

    def _cast(self, host, method, **kwargs):
        self._prepare(host, kwargs).cast(vcontext.outgoing(), method, **kwargs)

    def _long_call(self, host, method, **kwargs):
        return self._call(host, method, timeout=CONF.conductor.migration_call_timeout, **kwargs)

    # Inventory and checks ------------------------------------------------------

    def ping(self, host, timeout=None):
        return self._call(host, 'ping', timeout=timeout)

    def host_facts(self, host):
        return self._call(host, 'host_facts')

    def get_instance(self, host, instance):
        return self._call(host, 'get_instance', instance=instance)

    def find_instance(self, host, instance):
        """The instance dict, or None when it is not defined there."""
        return self._call(host, 'find_instance', instance=instance)

    def check_destination(self, host, instance, source_facts):
        return self._call(host, 'check_destination', instance=instance,
                          source_facts=source_facts)

    def create_storage_probe(self, host):
        return self._call(host, 'create_storage_probe')

    def check_storage_probe(self, host, token):
        return self._call(host, 'check_storage_probe', token=token)

    def remove_storage_probe(self, host, token):
        """A cast: nobody waits for a probe file to go (an agent that missed it leaves
        one small file behind, which its next probe does not look at)."""
        self._cast(host, 'remove_storage_probe', token=token)

    # Live migration ------------------------------------------------------------

    def prepare_live_incoming(self, host, instance, migration):
        return self._long_call(host, 'prepare_live_incoming', instance=instance,
                               migration=migration)

    def start_live_migration(self, host, instance, migration, dest_info, settings):
        """Start pre-copy in the agent; follow it with job_status."""
        return self._long_call(host, 'start_live_migration', instance=instance,
                               migration=migration, dest_info=dest_info, settings=settings)

    def finish_live_incoming(self, host, instance, migration):
        return self._long_call(host, 'finish_live_incoming', instance=instance,
                               migration=migration)

    def rollback_live_incoming(self, host, instance, migration):
        return self._long_call(host, 'rollback_live_incoming', instance=instance,
                               migration=migration)

    def mark_uncertain(self, host, instance):
        return self._call(host, 'mark_uncertain', instance=instance)

    def cleanup_live_outgoing(self, host, instance, migration):
        return self._long_call(host, 'cleanup_live_outgoing', instance=instance,
                               migration=migration)

    def job_control(self, host, migration_id, action):
        """'abort' or 'force-complete' a running job; False when no such job runs there."""
        return self._call(host, 'job_control', migration_id=migration_id, action=action)

    def job_status(self, host, migration_id, timeout=None, wait=None):
        """{'status', 'error', 'stats'}; status 'unknown' when the agent has no such job.

        ``wait``: seconds the agent may hold the answer while the job runs (1.1); an
        agent of 1.0 answers at once. ``timeout`` must allow for it.
        """
        kwargs = {}
        if wait and self.client.can_send_version('1.1'):
            kwargs.update(wait=wait, version='1.1')
        return self._call(host, 'job_status', migration_id=migration_id, timeout=timeout,
                          **kwargs)

    # Volumes ---------------------------------------------------------------------

    def connect_volumes(self, host, instance):
        return self._long_call(host, 'connect_volumes', instance=instance)

    def disconnect_volumes(self, host, instance):
        return self._long_call(host, 'disconnect_volumes', instance=instance)

    # Power and cold migration ----------------------------------------------------

    def power_off(self, host, instance, graceful_timeout):
        return self._long_call(host, 'power_off', instance=instance,
                               graceful_timeout=graceful_timeout)

    def power_on(self, host, instance):
        return self._long_call(host, 'power_on', instance=instance)

    def offer_files(self, host, instance, migration_id, peer=None):
        """Export a stopped VM: its description and an offer of its local files, each
        with its size and SHA-256, each to be fetched once by ``peer`` (an address)."""
        kwargs = {}
        if peer is not None:
            # The receiver checks against the recorded checksums, which a 1.2 agent
            # does not make: a cold migration needs both agents of this release.
            rpc.require_version(self.client, '1.3', 'agent', 'a cold migration from %s'
                                % host)
            kwargs.update(peer=peer, version='1.3')
        return self._long_call(host, 'offer_files', instance=instance,
                               migration_id=migration_id, **kwargs)

    def withdraw_offer(self, host, migration_id):
        return self._call(host, 'withdraw_offer', migration_id=migration_id)

    def receive_instance(self, host, instance, offer):
        """Fetch the offered files from the peer agent and define the VM; returns checksums."""
        return self._long_call(host, 'receive_instance', instance=instance, offer=offer)

    def undefine(self, host, instance, delete_local_files):
        return self._long_call(host, 'undefine', instance=instance,
                               delete_local_files=delete_local_files)

    # Evacuation ------------------------------------------------------------------

    def rebuild(self, host, instance):
        return self._long_call(host, 'rebuild', instance=instance)
