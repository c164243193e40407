"""``vmmig.api.wsgi:application`` for a WSGI server (uWSGI, mod_wsgi, gunicorn).

The configuration is read when the module is imported: the files named in
VMMIG_CONFIG_FILES (comma-separated), else oslo.config's search for vmmig.conf.
"""

import os

from vmmig.api import app
from vmmig import config


def init_application():
    files = [f for f in os.environ.get('VMMIG_CONFIG_FILES', '').split(',') if f]
    argv = []
    for path in files:
        argv += ['--config-file', path]
    config.parse_args(argv)
    return app.build()


application = init_application()
