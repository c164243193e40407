"""The Keystone test helper refuses clearly before it starts anything it cannot finish."""

import glob
import os
import tempfile

import pytest

from tests import fixtures as test_fixtures
from tests.openstack import keystone as keystone_mod


def _our_dirs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), 'vmmig-keystone-*')))


def test_not_installed_names_the_setup_script(tmp_path):
    assert not keystone_mod.installed(str(tmp_path))
    with pytest.raises(keystone_mod.KeystoneError, match='setup-keystone.sh'):
        keystone_mod.Keystone(venv=str(tmp_path)).start()


def test_unreachable_database_is_its_own_error_and_leaves_nothing(monkeypatch, tmp_path):
    # A virtualenv that looks installed (its programs would fail): the database is asked for
    # before anything runs.
    (tmp_path / 'bin').mkdir()
    for exe in ('keystone-manage', 'gunicorn'):
        (tmp_path / 'bin' / exe).write_text('#!/bin/sh\nexit 1\n')
        (tmp_path / 'bin' / exe).chmod(0o755)
    monkeypatch.setitem(test_fixtures.SERVER_URLS, 'postgresql',
                        'postgresql+psycopg2://postgres@127.0.0.1:1/postgres')
    before = _our_dirs()
    server = keystone_mod.Keystone(venv=str(tmp_path))
    with pytest.raises(keystone_mod.DatabaseUnavailable, match='postgresql'):
        server.start()
    assert _our_dirs() <= before
    assert server.database_name is None
