"""Fencing through each host's BMC over Redfish (the ``sushy`` client).

The BMC of every host is read from ``[ha] bmc_file``, not from the host's facts:
what a host reports about itself is what a half-dead host gets wrong, the
credentials would show in ``host list``, and a host that never registered can
still be fenced. ``confirm`` powers the host off and returns once the BMC says it
is off; a BMC that refuses, does not answer, or keeps the power on within
``[ha] fencing_timeout`` is a refusal naming what happened.
"""

import logging
import os
import threading
import time

import yaml

from vmmig import conf
from vmmig import exception
from vmmig.fencing import base

LOG = logging.getLogger(__name__)
CONF = conf.CONF

KEYS = {'address': str, 'username': str, 'password': str, 'system_id': str,
        'verify': bool}
REQUIRED = ('address', 'system_id')
POLL = 0.1


def load_bmc_file(path):
    """{host: {'address', 'username', 'password', 'system_id', 'verify'}}, checked."""
    def bad(reason):
        return exception.InvalidOption(option='[ha] bmc_file', value=path, reason=reason)

    if not path:
        raise bad('the redfish fencing driver needs a file naming the BMC of each host')
    try:
        with open(os.path.expanduser(path)) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise bad('cannot be read (%s)' % e.strerror)
    except yaml.YAMLError as e:
        raise bad('is neither YAML nor JSON (%s)' % e)
    if not isinstance(data, dict) or not data:
        raise bad('it must map each host name to its BMC')
    bmcs = {}
    for host, bmc in data.items():
        if not isinstance(bmc, dict):
            raise bad('host %s: its BMC must be a mapping of %s' % (host, ', '.join(KEYS)))
        for key, value in bmc.items():
            if key not in KEYS:
                raise bad('host %s: unknown key %r; possible: %s'
                          % (host, key, ', '.join(KEYS)))
            if not isinstance(value, KEYS[key]):
                raise bad('host %s: %s must be a %s, not %r'
                          % (host, key, KEYS[key].__name__, value))
        for key in REQUIRED:
            if not bmc.get(key):
                raise bad('host %s: %s is missing' % (host, key))
        bmcs[str(host)] = dict({'username': None, 'password': None, 'verify': True}, **bmc)
    return bmcs


class RedfishFencing(base.Fencing):
    """Powers a host off (ForceOff) and on through its BMC, with sushy."""

    powers_off = True
    fences = True

    def __init__(self):
        self._bmcs = None
        self._lock = threading.Lock()

    def validate(self):
        self.bmcs()

    def bmcs(self):
        with self._lock:
            if self._bmcs is None:
                self._bmcs = load_bmc_file(CONF.ha.bmc_file)
            return self._bmcs

    def _system(self, name, timeout):
        import sushy  # noqa: only deployments that fence through Redfish need it

        bmc = self.bmcs().get(name)
        if bmc is None:
            raise exception.Invalid(reason='[ha] bmc_file %s names no BMC for host %s'
                                    % (CONF.ha.bmc_file, name))
        auth = (sushy.auth.BasicAuth(bmc['username'], bmc['password'])
                if bmc['username'] else None)
        # No retries of a failed request: a BMC that errors is answered by the
        # fencing timeout, not by ten retries three seconds apart.
        root = sushy.Sushy(bmc['address'], auth=auth, verify=bmc['verify'],
                           server_side_retries=0, read_timeout=max(1, int(timeout)),
                           connect_timeout=min(5, max(1, int(timeout))))
        return root.get_system(bmc['system_id'])

    def _power(self, name, reset_type, wanted, what):
        import sushy
        timeout = CONF.ha.fencing_timeout
        deadline = time.monotonic() + timeout
        try:
            system = self._system(name, timeout)
            if system.power_state != wanted:
                system.reset_system(reset_type)
            while True:
                system.refresh(force=True)
                if system.power_state == wanted:
                    return True, 'powered %s by its BMC (%s)' % (what, self.bmcs()[name][
                        'address'])
                if time.monotonic() > deadline:
                    return False, ('the BMC of %s still reports power %s %.0f s after '
                                   'the request to power it %s' % (
                                       name, getattr(system.power_state, 'value',
                                                     system.power_state), timeout, what))
                time.sleep(POLL)
        except exception.VmmigException as e:
            return False, e.message
        except (sushy.exceptions.SushyError, OSError) as e:
            return False, 'the BMC of %s refused or did not answer: %s' % (name, e)

    def confirm(self, host):
        import sushy
        if host['state'] != 'down':
            return False, 'host %s is up' % host['name']
        return self._power(host['name'], sushy.ResetType.FORCE_OFF, sushy.PowerState.OFF,
                           'off')

    def power_on(self, host):
        import sushy
        return self._power(host['name'], sushy.ResetType.ON, sushy.PowerState.ON, 'on')
