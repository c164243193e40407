"""Rules of the conductor's host and instance endpoints, agents' reports included."""

from oslo_policy import policy

from vmmig.policies import base


def _rule(name, check_str, description, method):
    return policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description,
        operations=[{'path': method, 'method': 'RPC'}])


rules = [
    _rule('vmmig:host:evacuate', base.ADMIN, 'Evacuate every VM of a dead host.',
          'evacuate_host'),
    _rule('vmmig:host:list', base.READER, 'List hosts, their state and drain.', 'host_list'),
    _rule('vmmig:host:eligible', base.READER, 'Which hosts could take a VM.', 'host_eligible'),
    _rule('vmmig:host:maintenance:set', base.ADMIN,
          'Put a host in maintenance and drain it.', 'host_maintenance_set'),
    _rule('vmmig:host:maintenance:unset', base.ADMIN, 'Take a host out of maintenance.',
          'host_maintenance_unset'),
    _rule('vmmig:host:health', base.SERVICE,
          "Report a host's health (its agent, an outside monitor).", 'host_health'),
    _rule('vmmig:host:heartbeat', base.SERVICE, "An agent's heartbeat.", 'heartbeat'),
    _rule('vmmig:host:register', base.SERVICE, 'An agent registers its host at start.',
          'agent_started'),
    _rule('vmmig:instance:list', base.READER, 'List VMs.', 'instance_list'),
]


def list_rules():
    return rules
