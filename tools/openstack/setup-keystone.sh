#!/bin/bash
# Installs a real Keystone (PyPI's keystone, gunicorn to serve it, the PostgreSQL and MySQL
# drivers) into its own virtualenv, pinned by keystone-requirements.txt, for the functional
# tests (tests/openstack/keystone.py starts it). Idempotent: a virtualenv already built from
# the same pins on the same Python is left alone. Run as root on Debian 12; prints
# "keystone setup s <seconds>".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)
BASE=${VMMIG_OPENSTACK_DIR:-/opt/vmmig-openstack}
VENV=$BASE/keystone
REQS=$HERE/keystone-requirements.txt
PYTHON=${PYTHON:-python3}

. "$HERE/venv.sh"

stamp=$(pins_stamp "$REQS")
if [ -x "$VENV/bin/keystone-manage" ] && [ "$(cat "$VENV/.vmmig-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "keystone setup: $VENV is up to date"
  echo "keystone setup s $(( $(date +%s) - START ))"
  exit 0
fi

build_venv keystone "$VENV" "$REQS" 'keystone.server.wsgi, gunicorn, psycopg2, pymysql'
echo "$stamp" > "$VENV/.vmmig-stamp"
echo "keystone setup: $("$VENV/bin/keystone-manage" --version 2>/dev/null | tail -1 || true)"
echo "keystone setup s $(( $(date +%s) - START ))"
