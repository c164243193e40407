"""The BMC of the tests: sushy-tools' Redfish emulator in front of our power backend.

The Redfish side (URLs, JSON, the ComputerSystem.Reset action) is sushy-tools'
Flask application from PyPI; only its systems driver is ours, and it calls a
``PowerBackend``: powering a system off stops what runs on that test host,
powering it on starts it again. One emulator serves every host, each as the
system named after it (``/redfish/v1/Systems/<host>``).
"""

import json
import os
import threading
import time

import fixtures
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems import base
from sushy_tools import error
from werkzeug import serving

ON, OFF = 'On', 'Off'
OFF_RESETS = ('ForceOff', 'GracefulShutdown', 'PushPowerButton')
ON_RESETS = ('On', 'ForceOn')
RESTARTS = ('ForceRestart', 'GracefulRestart', 'PowerCycle')


class PowerBackend(object):
    """What powering a test host off and on does. Subclasses stop and start its
    processes; ``refuse`` (host -> reason) makes the BMC answer an error, ``ignore``
    (hosts) makes it accept the request and leave the power on."""

    def __init__(self, hosts):
        self.power = {h: ON for h in hosts}
        self.refuse = {}
        self.ignore = set()
        self.log = []  # (host, 'off'|'on', when) in the order they were done
        self.lock = threading.Lock()

    def off(self, host):
        raise NotImplementedError

    def on(self, host):
        raise NotImplementedError

    def set(self, host, wanted):
        with self.lock:
            if host in self.refuse:
                raise error.FishyError('BMC of %s: %s' % (host, self.refuse[host]))
            if host in self.ignore or self.power[host] == wanted:
                return
            (self.off if wanted == OFF else self.on)(host)
            self.power[host] = wanted
            self.log.append((host, wanted.lower(), time.time()))


class _Systems(base.AbstractSystemsDriver):
    backend = None

    @property
    def driver(self):
        return 'vmmig test power backend'

    @property
    def systems(self):
        return sorted(self.backend.power)

    def _known(self, identity):
        if identity not in self.backend.power:
            raise error.NotFound('no system %s' % identity)
        return identity

    def uuid(self, identity):
        return self._known(identity)

    def name(self, identity):
        return self._known(identity)

    def get_power_state(self, identity):
        return self.backend.power[self._known(identity)]

    def set_power_state(self, identity, state):
        host = self._known(identity)
        if state in OFF_RESETS:
            self.backend.set(host, OFF)
        elif state in ON_RESETS:
            self.backend.set(host, ON)
        elif state in RESTARTS:
            self.backend.set(host, OFF)
            self.backend.set(host, ON)
        else:
            raise error.BadRequest('unknown reset type %s' % state)

    def get_boot_device(self, identity):
        return 'Hdd'

    def set_boot_device(self, identity, boot_source):
        raise error.NotSupportedError('boot devices')


# The emulator picks its systems driver from its configuration (libvirt, nova, ironic
# or fake); ours is handed over through a key of its own. One driver object for the
# process, whose backend each RedfishBmc sets: the emulator's app is a module global and
# keeps what it looked up (memoized), so a second BMC in the same test run would
# otherwise answer with the first one's hosts ("Systems/host1 not found").
_SYSTEMS = _Systems()
emulator.Application.systems = property(lambda app: _SYSTEMS)


class _QuietHandler(serving.WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class RedfishBmc(fixtures.Fixture):
    """The emulator on 127.0.0.1, in a thread of this process; ``bmc_file(path)`` writes
    the [ha] bmc_file that points every host at it."""

    def __init__(self, backend):
        self.backend = backend

    def _setUp(self):
        _SYSTEMS.backend = self.backend
        self.addCleanup(setattr, _SYSTEMS, 'backend', None)
        self.server = serving.make_server('127.0.0.1', 0, emulator.app, threaded=True,
                                          request_handler=_QuietHandler)
        self.address = 'http://127.0.0.1:%d' % self.server.server_port
        thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                  name='redfish-bmc')
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(self.server.shutdown)

    def bmc_file(self, path):
        with open(path, 'w') as f:
            json.dump({host: {'address': self.address, 'username': 'admin',
                              'password': 'password',
                              'system_id': '/redfish/v1/Systems/%s' % host}
                       for host in self.backend.power}, f)
        return path


class SimHostPower(PowerBackend):
    """Simulated hosts of a ServiceProcesses fixture: off kills the host's agent
    process (SIGKILL: nothing of it runs on) and marks the host fenced, as a power cut
    stops its guests; on starts its agent again."""

    def __init__(self, hosts, services=None):
        super().__init__(hosts)
        self.services = services
        # host -> callables run once the host is off (a test's way to strike then)
        self.after_off = {}

    def off(self, host):
        name = 'agent-' + host
        if name in self.services.procs:
            self.services.kill(name)
        path = os.path.join(self.services.dir, 'sim', 'hosts', host + '.fenced')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('powered off by its BMC\n')
        for hook in self.after_off.pop(host, ()):
            hook()

    def on(self, host):
        self.services.start_agent(host)
