"""The one name rule (vmmig.names) and the paths built from names."""

import os
import tempfile

import pytest

from vmmig import exception
from vmmig import names


@pytest.mark.parametrize('value', [
    'instance-0000001a', 'web-1', 'compute-1.example.org', 'vda',
    '0b2f6a3e-8d5c-4c4e-9a0f-1b2c3d4e5f60', 'sim-a', 'a', 'vm_2:b@c+d', 'x' * 255,
])
def test_good_names_pass(value):
    assert names.check('instance', value) == value


@pytest.mark.parametrize('value, says', [
    ('', 'blank'),
    (' ', 'blank'),
    ('caf\u00e9', "'\u00e9'"),
    ('..', "start with '.'"),
    ('.', "start with '.'"),
    ('../../etc/x', '"/"'),
    ('a/b', '"/"'),
    ('-o', "start with '-'"),
    ('a\x00b', 'control characters (U+0000)'),
    ('a\nb', 'control characters (U+000A)'),
    ('a b', "' '"),
    ('x' * 256, 'at most 255'),
    (7, 'a string'),
])
def test_bad_names_are_refused_naming_the_field(value, says):
    with pytest.raises(exception.InvalidName) as e:
        names.check('disk', value)
    assert 'disk name' in str(e.value)
    assert says in str(e.value)


def test_safe_path_builds_under_the_base():
    with tempfile.TemporaryDirectory() as base:
        assert names.safe_path(base, 'web-1-vda.img') == os.path.join(base, 'web-1-vda.img')
        for hostile in ('..', '../x', '/etc/passwd', '-rf'):
            with pytest.raises(exception.InvalidName):
                names.safe_path(base, hostile)


def test_safe_path_refuses_a_link_that_leads_out():
    with tempfile.TemporaryDirectory() as top:
        base = os.path.join(top, 'state')
        os.mkdir(base)
        os.symlink(top, os.path.join(base, 'out'))
        with pytest.raises(exception.Invalid):
            names.safe_path(base, 'out', 'x.img')
