"""Checks a migration request before anything is recorded.

Every reason is collected, not only the first: an operator who fixes one
problem should not discover the next one on the following attempt. Nothing
here writes to the database, so a refused request leaves it unchanged.
"""

from concurrent import futures
import dataclasses
import logging
import threading
import time

import oslo_messaging as messaging

from vmmig import conf
from vmmig.db import api as db
from vmmig.db import states
from vmmig import exception
from vmmig import plugins
from vmmig.scheduler import filters
from vmmig.scheduler import host_cache
from vmmig.scheduler import host_manager
from vmmig.storage import base as storage_base

LOG = logging.getLogger(__name__)
CONF = conf.CONF

UNFINISHED = (states.QUEUED, states.HELD) + tuple(states.ACTIVE)
#: remembered passes past which the expired ones are dropped
MAX_PROVEN = 4096


class ProvenChecks(object):
    """Checks the agents passed, and when: trusted for [conductor] host_checks_max_age,
    as the checks of a request are until it starts.

    A guest CPU the destination can give, or storage two hosts share, does not change
    in seconds; asking again costs agent calls (a probe: three, and two file
    operations on shared storage). A failed check is not remembered: a host that was
    fixed is seen at once.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._at = {}

    def proven(self, key):
        with self._lock:
            at = self._at.get(key)
        return at is not None and time.monotonic() - at < CONF.conductor.host_checks_max_age

    def remember(self, key):
        now = time.monotonic()
        with self._lock:
            self._at[key] = now
            if len(self._at) > MAX_PROVEN:
                for old in [k for k, at in self._at.items()
                            if now - at >= CONF.conductor.host_checks_max_age]:
                    del self._at[old]


def shared_storage_key(a, b):
    return ('storage', frozenset((a, b)))


def guest_cpu_key(source, dest, instance):
    """What a destination's CPU check depends on: the guest's CPU as it runs and as
    defined, how it is emulated, and the source it comes from."""
    return ('cpu', source, dest, instance.get('cpu_xml'), instance.get('cpu_xml_configured'),
            instance.get('virt_type'), instance.get('arch'),
            tuple(sorted(instance.get('cpu_features') or ())))


@dataclasses.dataclass
class Plan:
    migration_type: object
    storage: object
    instance: dict
    source: str
    dest: str
    options: dict

    def room(self):
        """The columns of the record for the room the VM takes on ``dest``."""
        return {'dest_%s' % k: v for k, v in filters.footprint(self.instance).items()}

    def room_check(self, host, inbound):
        """Why ``host`` (a hosts row) has no room for the VM with ``inbound`` on its way
        there (db.api.inbound() of the host), or None."""
        return filters.CapacityFilter().reason(host, {
            'instance': self.instance, 'inbound': {host['name']: inbound}})


class Prechecks(object):
    """The checks of one conductor, with what it remembers between requests."""

    def __init__(self, agents, backend=None):
        """``agents``: what the VM on its host is asked of (get_instance); the guest
        CPU and shared storage checks are asked of the hosts' agents only where the
        ``backend`` runs them (another checks them itself, and says why it refuses)."""
        self.agents = agents
        self.ask_agents = backend is None or backend.uses_agents
        self.hosts = host_cache.HostCache()
        self.proven = ProvenChecks()
        # Destination checks started before the source's answer is in (see plan).
        self._early = futures.ThreadPoolExecutor(8, thread_name_prefix='vmmig-precheck')

    def close(self):
        self._early.shutdown(wait=False, cancel_futures=True)

    def plan(self, instance_name, migration_type, requested_host=None, options=None,
             exclude_migration=None, ask_hosts=True):
        """Return a Plan, or raise PrecheckFailed with every reason (or a NotFound/Invalid).

        ``ask_hosts=False`` leaves out the checks only the agents can make (guest CPU,
        shared storage) for a destination they passed moments ago.
        """
        mtype = plugins.migration_type(migration_type)()
        clean = mtype.validate_options(options)
        # Without a destination every host is ranked: what changed among them is read
        # in the same transaction.
        row, source, dest_host, unfinished, versions, inbound = db.precheck_rows(
            instance_name, requested_host, UNFINISHED, host_versions=not requested_host,
            exclude_migration=exclude_migration)
        reasons = []
        for other in unfinished:
            if other['id'] != exclude_migration:
                raise exception.PrecheckFailed(instance=instance_name, reasons=[
                    'it already has migration %s, which is %s' % (other['id'], other['state'])])
        early = self._early_cpu_check(mtype, row, source, dest_host, ask_hosts)
        instance, source_facts = _instance_and_source(self.agents, mtype, row, source, reasons)
        storage, storage_reasons = _storage(instance, mtype)
        reasons += storage_reasons
        reasons += mtype.instance_reasons(instance, clean)
        request = _request(mtype, storage, instance, source, source_facts, clean, inbound)
        reasons += _source_capability_reasons(request)
        # It counts only if it asked about the VM the source just showed.
        cpu_check = early[1] if early and early[0] == request['instance'] else None
        manager = host_manager.HostManager()
        if dest_host:
            candidates = [dest_host]
        else:
            candidates = [h for h in self.hosts.hosts(versions)
                          if h['name'] != source['name']]
        dest = None
        eligible, verdicts = manager.rank(candidates, request) if storage else ([], [])
        for host in eligible:
            host_reasons = (self.host_reasons_from_agents(
                mtype, storage, request, host['name'],
                cpu_check=cpu_check if dest_host and host['name'] == dest_host['name'] else None)
                if not reasons and ask_hosts else [])
            if not host_reasons:
                dest = host['name']
                break
            verdicts = [dict(v, eligible=False, reasons=host_reasons)
                        if v['host'] == host['name'] else v for v in verdicts]
        if dest is None:
            if dest_host:
                reasons += [r for v in verdicts for r in v['reasons']]
            elif not reasons:
                reasons.append('no host can take it: ' + ' | '.join(
                    '%s: %s' % (v['host'], '; '.join(v['reasons']))
                    for v in verdicts if v['reasons']) if verdicts else 'no other host is known')
        if reasons or dest is None:
            raise exception.PrecheckFailed(instance=instance_name, reasons=reasons)
        return Plan(mtype, storage, instance, source['name'], dest, clean)

    def eligibility(self, instance_name, migration_type):
        """Every host with its verdict and all its reasons (``vmmig host eligible``).

        The VM's own host is listed too, refused as such: an operator reading the table
        should not wonder where it went.
        """
        mtype = plugins.migration_type(migration_type)()
        row = db.instance_get(instance_name)
        source = db.host_get(row['host'])
        common = []
        instance, source_facts = _instance_and_source(self.agents, mtype, row, source, common)
        storage, storage_reasons = _storage(instance, mtype)
        common += storage_reasons + mtype.instance_reasons(instance, {})
        request = _request(mtype, storage, instance, source, source_facts, {}, db.inbound())
        common += _source_capability_reasons(request)
        hosts = db.host_list()
        verdicts = host_manager.HostManager().verdicts(hosts, request) if storage else [
            {'host': h['name'], 'eligible': False, 'reasons': []} for h in hosts]
        out = []
        for verdict in verdicts:
            reasons = common + verdict['reasons']
            if not reasons:
                reasons = self.host_reasons_from_agents(mtype, storage, request,
                                                        verdict['host'])
            out.append({'host': verdict['host'], 'eligible': not reasons, 'reasons': reasons})
        return out

    def _early_cpu_check(self, mtype, row, source, dest_host, ask_hosts):
        """(instance, future of check_destination) for the VM as last reported, or None.

        Asked of the requested destination while the source is asked for the VM
        (a live migration's two slowest checks, side by side); the answer counts
        only if the source shows the VM as it was reported.
        """
        if not (dest_host and ask_hosts and self.ask_agents and mtype.name == 'live'
                and mtype.source_must_be_up
                and source['state'] == 'up' and dest_host['state'] == 'up'):
            return None
        instance = dict(row['spec'], host=source['name'])
        if self.proven.proven(guest_cpu_key(source['name'], dest_host['name'], instance)):
            return None  # nothing to ask: host_reasons_from_agents will not ask either
        source_facts = dict(source['facts'], host=source['name'])
        return instance, self._early.submit(self.agents.check_destination, dest_host['name'],
                                            instance, source_facts)

    def host_reasons_from_agents(self, mtype, storage, request, dest, cpu_check=None):
        """Checks only the hosts themselves can make: the guest CPU, the shared storage.

        ``cpu_check``: a future of the CPU check of ``dest`` for this very request.
        """
        agents = self.agents
        if not mtype.source_must_be_up or not self.ask_agents:
            return []
        source = request['source']['host']
        reasons = []
        try:
            cpu_key = guest_cpu_key(source, dest, request['instance'])
            if mtype.name == 'live' and not self.proven.proven(cpu_key):
                cpu_reasons = (cpu_check.result() if cpu_check is not None else
                               agents.check_destination(dest, request['instance'],
                                                        request['source']))
                if not cpu_reasons:
                    self.proven.remember(cpu_key)
                reasons += cpu_reasons
            shared_key = shared_storage_key(source, dest)
            if storage.needs_shared_storage and not self.proven.proven(shared_key):
                token = agents.create_storage_probe(source)
                try:
                    if token and agents.check_storage_probe(dest, token):
                        self.proven.remember(shared_key)
                    else:
                        reasons.append('%s does not see the instances storage of %s (a probe '
                                       'file made on %s is not visible there)'
                                       % (dest, source, source))
                finally:
                    agents.remove_storage_probe(source, token)
        except messaging.MessagingTimeout:
            reasons.append('the agent of %s does not answer' % dest)
        return reasons


def _instance_and_source(agents, mtype, row, source, reasons):
    if not mtype.source_must_be_up:
        if source['state'] == 'up':
            reasons.append('host %s is up: evacuation is for VMs of a dead host; migrate '
                           'it cold or live instead' % source['name'])
        return row['spec'], source['facts']
    if source['state'] != 'up':
        raise exception.PrecheckFailed(instance=row['name'], reasons=[
            'its host %s is down; only an evacuation can move it' % source['name']])
    try:
        instance = agents.get_instance(source['name'], row['name'])
    except messaging.MessagingTimeout:
        raise exception.PrecheckFailed(instance=row['name'], reasons=[
            'the agent of its host %s does not answer' % source['name']])
    return instance, source['facts']


def _request(mtype, storage, instance, source, source_facts, options, inbound):
    """What the filters judge a host by (see vmmig.scheduler.filters)."""
    return {'instance': dict(instance, host=source['name']), 'migration_type': mtype.name,
            'migration': mtype, 'source': dict(source_facts, host=source['name']),
            'storage': storage, 'inbound': inbound,
            # The hypervisor capabilities both hosts need, as the driver contract says.
            'capabilities': mtype.required_capabilities(storage, options) if storage else {}}


def _source_capability_reasons(request):
    """The source's hypervisor can do what the request needs (the destination's is the
    hypervisor_capabilities filter's): said once, not once per host."""
    source = request['source']
    return filters.missing_capabilities(source['host'], source, request['capabilities'])


def _storage(instance, mtype):
    mode = storage_base.storage_mode_of(instance.get('disks', []))
    try:
        storage = plugins.storage_mode(mode)
    except exception.DriverNotFound as e:
        return None, ['its storage mode %s is not enabled (%s)' % (mode, e)]
    if not storage.supports(mtype.name):
        return storage, [exception.UnsupportedCombination(
            migration_type=mtype.name, storage_mode=mode,
            reason=storage.refusal(mtype.name)).message]
    return storage, []
