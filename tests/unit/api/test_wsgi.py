"""vmmig.api.wsgi:application, as a WSGI server loads it: configured from the files in
VMMIG_CONFIG_FILES, it answers (a process of its own: it parses the configuration)."""

import json
import os
import subprocess
import sys

SCRIPT = '''
import json, webob
from vmmig.api import wsgi
resp = webob.Request.blank('/').get_response(wsgi.application)
print(json.dumps([resp.status_int, resp.headers.get('x-openstack-request-id'),
                  resp.json_body]))
'''


def test_the_module_level_application_serves_the_versions(tmp_path):
    path = tmp_path / 'vmmig.conf'
    path.write_text('[DEFAULT]\nstate_path = %s\n[api]\nauth_strategy = noauth\n'
                    % (tmp_path / 'state'))
    env = dict(os.environ, VMMIG_CONFIG_FILES=str(path), HOME=str(tmp_path))
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    status, request_id, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 200 and request_id.startswith('req-')
    assert body['versions'][0]['id'] == 'v1'
