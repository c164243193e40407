"""Every command of `vmmig` (but the demo) is an `openstack vmmig` command too, of the
same class over the API's client."""

import configparser
import os

from vmmig.cmd import cli
from vmmig.osc import commands

HERE = os.path.dirname(__file__)


def _entry_points():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(HERE, '..', '..', '..', 'setup.cfg'))
    lines = parser['entry_points']['openstack.vmmig.v1'].strip().splitlines()
    return dict((k.strip(), v.strip()) for k, v in (line.split('=') for line in lines))


def test_every_vmmig_command_is_an_openstack_command():
    points = _entry_points()
    expected = {'vmmig_' + name.replace(' ', '_') for name in cli.COMMANDS} - {'vmmig_demo'}
    assert set(points) == expected
    for name, target in points.items():
        module, _, attr = target.partition(':')
        command = getattr(commands, attr)
        assert module == commands.__name__
        assert issubclass(command, cli.COMMANDS[name[len('vmmig_'):].replace('_', ' ')])
        assert commands._OnTheApi in command.__mro__


def test_openstack_vmmig_names_an_unreachable_endpoint_in_one_line(tmp_path):
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = 'http://127.0.0.1:%d' % port
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env['HOME'] = str(tmp_path)
    openstack = os.path.join(os.path.dirname(sys.executable), 'openstack')
    result = subprocess.run([openstack, '--os-auth-type', 'none', '--os-vmmig-endpoint',
                             url, 'vmmig', 'migration', 'list'], capture_output=True,
                            text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith('vmmig-api cannot be reached: %s/' % url), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
