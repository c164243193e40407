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

# The stamp names the pins and the interpreter the virtualenv was built from.
stamp=$( (cat "$REQS"; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/keystone-manage" ] && [ "$(cat "$VENV/.vmmig-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "keystone setup: $VENV is up to date"
  echo "keystone setup s $(( $(date +%s) - START ))"
  exit 0
fi

# Debian's own python3 needs python3-venv for `-m venv` (ensurepip); the wheels need nothing
# else (psycopg2-binary carries its libpq).
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "keystone setup: installing python3-venv"
  apt-get -o DPkg::Lock::Timeout=600 -y -q update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q \
    install --no-install-recommends python3-venv >/dev/null
fi

echo "keystone setup: building $VENV from $REQS"
rm -rf "$VENV"
mkdir -p "$BASE"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-input -r "$REQS" 2>&1 \
  | grep -v '^WARNING: Location' || true
# pip's own exit status is hidden by the filter above: ask the result instead.
"$VENV/bin/python" -W ignore -c 'import keystone.server.wsgi, gunicorn, psycopg2, pymysql'
"$VENV/bin/pip" check --disable-pip-version-check >/dev/null
echo "$stamp" > "$VENV/.vmmig-stamp"
echo "keystone setup: $("$VENV/bin/keystone-manage" --version 2>/dev/null | tail -1 || true)"
echo "keystone setup s $(( $(date +%s) - START ))"
