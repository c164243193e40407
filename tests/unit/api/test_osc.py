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
