# Sourced by setup-keystone.sh and setup-nova.sh: how an OpenStack service's pinned
# virtualenv is stamped and built. Needs PYTHON set.

# The stamp of a virtualenv: its pins and the interpreter it is built with.
pins_stamp() {
  (cat "$1"; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1
}

# build_venv WHO VENV REQS MODULES: a new virtualenv at VENV from the pins in REQS,
# checked by importing MODULES (comma-separated) and by pip check.
build_venv() {
  local who=$1 venv=$2 reqs=$3 modules=$4
  # Debian's own python3 needs python3-venv for `-m venv` (ensurepip); the wheels need
  # nothing else (psycopg2-binary carries its libpq).
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "$who setup: installing python3-venv"
    apt-get -o DPkg::Lock::Timeout=600 -y -q update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q \
      install --no-install-recommends python3-venv >/dev/null
  fi
  echo "$who setup: building $venv from $reqs"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$PYTHON" -m venv "$venv"
  # pip's "Location ... is ignored" warnings about this machine's local indexes are noise.
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$reqs" 2>&1 \
    | grep -v '^WARNING: Location' || true
  # pip's own exit status is hidden by the filter above: ask the result instead.
  "$venv/bin/python" -W ignore -c "import $modules"
  "$venv/bin/pip" check --disable-pip-version-check >/dev/null
}
