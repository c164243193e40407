#!/bin/bash
# Installs real Nova and Placement (nova, openstack-placement, gunicorn, keystonemiddleware,
# the MySQL and PostgreSQL drivers) into their own virtualenv, pinned by
# nova-requirements.txt, for the functional tests (tests/openstack/nova.py starts them).
# Idempotent: a virtualenv already built from the same pins on the same Python is left
# alone. Run as root on Debian 12; prints "nova setup s <seconds>".
#
#   VMMIG_OPENSTACK_DIR   where the venvs live (default /opt/vmmig-openstack)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)
BASE=${VMMIG_OPENSTACK_DIR:-/opt/vmmig-openstack}
VENV=$BASE/nova
REQS=$HERE/nova-requirements.txt
STAMP=$VENV/.vmmig-requirements.sha256
PIP_QUIET=(-q --disable-pip-version-check)

PYTHON=${PYTHON:-python3}
. "$HERE/venv.sh"
want=$(pins_stamp "$REQS")
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$VENV/etc/nova/api-paste.ini" ]; then
  echo "nova setup: $VENV is up to date"
else
  build_venv nova "$VENV" "$REQS" \
    'nova.api.openstack.wsgi_app, placement.deploy, gunicorn, pymysql, psycopg2, keystonemiddleware'

  # The nova wheel lacks api-paste.ini; the sdist of the same version has it.
  version=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nova"))')
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download "${PIP_QUIET[@]}" --no-binary :all: --no-deps -d "$tmp" "nova==$version" \
    2>&1 | grep -v "^WARNING: Location" || true
  mkdir -p "$VENV/etc/nova"
  tar -xzf "$tmp"/nova-"$version".tar.gz -O "nova-$version/etc/nova/api-paste.ini" > "$VENV/etc/nova/api-paste.ini"
  grep -q '^\[composite:osapi_compute\]' "$VENV/etc/nova/api-paste.ini"
  echo "$want" > "$STAMP"
fi

# The fixture gives each test run its own RabbitMQ vhost with rabbitmqctl.
command -v rabbitmqctl >/dev/null || { echo "nova setup: rabbitmqctl not found" >&2; exit 1; }
echo "nova setup: nova $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nova"))')," \
  "openstack-placement $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openstack-placement"))')"
echo "nova setup s $(( $(date +%s) - START ))"
