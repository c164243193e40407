"""The vmmig command over HTTP when something is wrong: one line naming the problem,
exit code 1, and no RPC call made."""

import json
import socket
import threading
from wsgiref import simple_server

import pytest

from tests.unit.cli import FakeConductor
from tests.unit.cli import run


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def quiet_env(monkeypatch, tmp_path):
    for name in ('OS_CLOUD', 'OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
                 'OS_PROJECT_NAME', 'VMMIG_ENDPOINT', 'OS_CLIENT_CONFIG_FILE'):
        monkeypatch.delenv(name, raising=False)
    # No operator's clouds.yaml may change the outcome.
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.chdir(tmp_path)


def _serve(answer):
    """A WSGI server in a thread that answers every request with ``answer``."""
    def application(environ, start_response):
        status, body = answer
        start_response(status, [('Content-Type', 'application/json')])
        return [json.dumps(body).encode()]
    server = simple_server.make_server('127.0.0.1', 0, application)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _one_line(result):
    assert result.code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ''
    return lines[0]


def test_keystone_unreachable(quiet_env, monkeypatch, tmp_path):
    url = 'http://127.0.0.1:%d/v3' % _closed_port()
    monkeypatch.setenv('OS_AUTH_URL', url)
    for name, value in (('OS_USERNAME', 'u'), ('OS_PASSWORD', 'p'),
                        ('OS_PROJECT_NAME', 'vmmig'), ('OS_USER_DOMAIN_ID', 'default'),
                        ('OS_PROJECT_DOMAIN_ID', 'default')):
        monkeypatch.setenv(name, value)
    api = FakeConductor()
    line = _one_line(run(['host', 'list'], api, tmp_path))
    assert line.startswith('Keystone: cannot be reached at %s' % url), line
    assert api.calls == []


def test_an_unknown_cloud_names_it(quiet_env, monkeypatch, tmp_path):
    monkeypatch.setenv('OS_CLOUD', 'nosuchcloud')
    line = _one_line(run(['host', 'list'], FakeConductor(), tmp_path))
    assert 'nosuchcloud' in line and line.startswith('Keystone: '), line


def test_vmmig_api_unreachable(quiet_env, tmp_path):
    url = 'http://127.0.0.1:%d' % _closed_port()
    line = _one_line(run(['--os-endpoint', url, 'host', 'list'], FakeConductor(),
                         tmp_path))
    assert line.startswith('vmmig-api cannot be reached: %s/' % url), line


def test_an_api_without_v1_is_named(quiet_env, tmp_path):
    server = _serve(('200 OK', {'versions': [{'id': 'v2', 'min_version': '2.0',
                                              'version': '2.3'}]}))
    try:
        url = 'http://127.0.0.1:%d' % server.server_port
        line = _one_line(run(['--os-endpoint', url, 'migration', 'list'],
                             FakeConductor(), tmp_path))
    finally:
        server.shutdown()
    assert line == ('vmmig-api cannot be reached: %s serves API version(s) v2 (2.0 to '
                    '2.3), not v1 1.0' % url), line


def test_not_a_vmmig_api_is_named(quiet_env, tmp_path):
    server = _serve(('404 Not Found', {'message': 'nothing here'}))
    try:
        url = 'http://127.0.0.1:%d' % server.server_port
        line = _one_line(run(['--os-endpoint', url, 'migration', 'list'],
                             FakeConductor(), tmp_path))
    finally:
        server.shutdown()
    assert 'is not a vmmig-api' in line and '404' in line, line


def test_the_endpoint_can_come_from_the_config_file(quiet_env, tmp_path):
    url = 'http://127.0.0.1:%d' % _closed_port()
    line = _one_line(run(['host', 'list'], FakeConductor(), tmp_path,
                         config='[cli]\napi_endpoint = %s\n' % url))
    assert line.startswith('vmmig-api cannot be reached: %s/' % url), line
