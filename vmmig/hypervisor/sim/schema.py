"""The schema of a simulated cluster file: every key's type and range, checked once.

``check`` walks the file as loaded (``load_json`` keeps duplicate keys visible)
and returns every problem, each led by the key path that is wrong
(``instances.web-1.vcpus``). Written out here rather than with jsonschema: the
cross-references (an instance's host, a volume disk's volume) and the merge with
the defaults of cluster.py need code anyway, and the rules stay one screen.
"""

import json
import numbers
import uuid

from vmmig import names

POWER_STATES = ('running', 'paused', 'suspended', 'shutoff')
DISK_LOCATIONS = ('local', 'shared', 'volume')


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    def __init__(self, pairs):
        super().__init__(pairs)
        seen = set()
        self.duplicates = sorted({k for k, _v in pairs if k in seen or seen.add(k)})


def load_json(f):
    return json.load(f, object_pairs_hook=_Object)


# Checkers: each returns None when the value is good, else what it should be.

def _whole(minimum):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return 'a whole number >= %d' % minimum
    return check


def _number(minimum, above=False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                value <= minimum if above else value < minimum):
            return 'a number %s %s' % ('>' if above else '>=', minimum)
    return check


def _integer(value):
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2 ** 31 - 1:
        return 'a whole number'


def _text(value):
    if not isinstance(value, str) or not value.strip():
        return 'a non-empty string'


def _name(value):
    # Disk, volume and shared-storage names become file names too (vmmig.names).
    wrong = names.problem(value)
    if wrong:
        return 'a name (%s)' % names.RULE


def _optional(checker):
    def check(value):
        return None if value is None else checker(value)
    return check


def _boolean(value):
    if not isinstance(value, bool):
        return 'true or false'


def _one_of(choices):
    def check(value):
        if value not in choices:
            return 'one of %s' % ', '.join(choices)
    return check


def _uuid(value):
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return 'a UUID'


def _strings(value):
    if not isinstance(value, list) or not all(_text(v) is None for v in value):
        return 'a list of non-empty strings'


def _devices(value):
    # A device is its address, or an object with at least an address (hosts list theirs
    # with a type; other facts of a device may follow).
    if not isinstance(value, list) or not all(
            _text(v) is None or (isinstance(v, dict) and _text(v.get('address')) is None)
            for v in value):
        return 'a list of device addresses or objects with an "address"'


HOST = {
    'vcpus': _whole(1), 'memory_mb': _whole(1), 'disk_gb': _whole(0),
    'cpu_model': _text, 'cpu_vendor': _text, 'cpu_features': _strings,
    'os_version': _text, 'hypervisor_type': _text, 'hypervisor_version': _text,
    'cluster': _text, 'link_gbps': _number(0, above=True),
    'shared_storage': _optional(_name), 'pci_devices': _devices,
}
WORKLOAD = {
    'dirty_rate_mbps': _number(0), 'wws_mb': _number(0),
    'link_loss_at': _optional(_number(0)), 'ignores_acpi': _optional(_boolean),
}
DISK = {
    'name': _name, 'size_gb': _whole(0), 'location': _one_of(DISK_LOCATIONS),
    'volume': _name,
}
DISK_REQUIRED = ('name', 'size_gb', 'location')
INSTANCE = {
    'host': _text, 'vcpus': _whole(1), 'memory_mb': _whole(1),
    'power_state': _one_of(POWER_STATES), 'disks': None, 'workload': None,
    'pci_devices': _devices, 'vgpus': _devices, 'cpu_features': _strings, 'uuid': _uuid,
    'ha': None,
}
#: A VM's high availability (vmmig.strategies.evacuate.ha_settings): rebuilt after its host
#: fails, highest priority first.
HA = {'enabled': _boolean, 'priority': _integer}


def check_name(path, name):
    """The rule for a host or VM name (vmmig.names): they become file names of the
    simulator's state, so one with a path part in it must not get that far."""
    wrong = names.problem(name)
    if wrong:
        return ['%s: %s' % (path, wrong)]
    return []


def _describe(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _duplicates(path, obj):
    return ['%s.%s: given more than once' % (path, key) if path else
            '%s: given more than once' % key for key in getattr(obj, 'duplicates', ())]


def _object(path, value, rules, extra=()):
    """Problems of one JSON object against {key: checker}; keys in ``extra`` pass."""
    if not isinstance(value, dict):
        return ['%s: must be an object, not %s' % (path, _describe(value))]
    problems = _duplicates(path, value)
    for key, item in value.items():
        where = '%s.%s' % (path, key)
        if key not in rules:
            if key not in extra:
                problems.append('%s: unknown key; known: %s'
                                % (where, ', '.join(sorted(set(rules) | set(extra)))))
            continue
        checker = rules[key]
        wrong = checker(item) if checker is not None else None
        if wrong:
            problems.append('%s: must be %s, not %s' % (where, wrong, _describe(item)))
    return problems


def _disks(path, disks):
    if not isinstance(disks, list):
        return ['%s: must be a list of disks, not %s' % (path, _describe(disks))]
    problems = []
    for index, disk in enumerate(disks):
        where = '%s.%d' % (path, index)
        found = _object(where, disk, DISK)
        if isinstance(disk, dict):
            missing = [k for k in DISK_REQUIRED if k not in disk]
            if disk.get('location') == 'volume' and 'volume' not in disk:
                missing.append('volume')
            found += ['%s.%s: missing' % (where, k) for k in missing]
        problems += found
    return problems


def check(data, host_extra=(), instance_extra=()):
    """Every problem of a loaded cluster file, as 'key.path: what is wrong' lines.

    Keys in ``host_extra``/``instance_extra`` (the defaults of cluster.py) are
    accepted unchecked, so a fact given a default there is never refused here.
    """
    if not isinstance(data, dict):
        return ['the top level must be an object with "hosts" and "instances", not %s'
                % _describe(data)]
    problems = _duplicates('', data)
    problems += ['%s: unknown key; known: hosts, instances' % key
                 for key in data if key not in ('hosts', 'instances')]
    hosts = data.get('hosts')
    if not isinstance(hosts, dict) or not hosts:
        problems.append('hosts: must be a non-empty object of hosts, not %s'
                        % _describe(hosts))
        hosts = {}
    problems += _duplicates('hosts', hosts)
    for name, spec in hosts.items():
        path = 'hosts.%s' % name
        problems += check_name(path, name)
        problems += _object(path, spec, HOST, host_extra)
    instances = data.get('instances', {})
    if not isinstance(instances, dict):
        problems.append('instances: must be an object of instances, not %s'
                        % _describe(instances))
        instances = {}
    problems += _duplicates('instances', instances)
    for name, spec in instances.items():
        path = 'instances.%s' % name
        problems += check_name(path, name)
        problems += _object(path, spec, INSTANCE, instance_extra)
        if not isinstance(spec, dict):
            continue
        if 'host' not in spec:
            problems.append('%s.host: missing' % path)
        elif isinstance(spec['host'], str) and spec['host'] not in hosts:
            problems.append('%s.host: %s is not one of the hosts' % (path, spec['host']))
        if 'disks' in spec:
            problems += _disks(path + '.disks', spec['disks'])
        if spec.get('workload') is not None:
            problems += _object(path + '.workload', spec['workload'], WORKLOAD)
        if spec.get('ha') is not None:
            problems += _object(path + '.ha', spec['ha'], HA)
    return problems
