#!/bin/bash
# Installs real Nova and Placement into their own virtualenv for the functional tests
# (tests/openstack/nova.py starts them). Idempotent: a venv already built from the same
# requirements file is left alone. Run as root on Debian 12 (Python 3.11).
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

want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$VENV/etc/nova/api-paste.ini" ]; then
  echo "setup-nova: $VENV is up to date"
else
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 -y -q install --no-install-recommends python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # pip's "Location ... is ignored" warnings about this machine's local indexes are noise.
  "$VENV/bin/pip" install "${PIP_QUIET[@]}" -r "$REQS" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c 'import nova, placement, gunicorn, pymysql, psycopg2, keystonemiddleware'

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
command -v rabbitmqctl >/dev/null || { echo "setup-nova: rabbitmqctl not found" >&2; exit 1; }
echo "openstack setup s $(( $(date +%s) - START ))"
