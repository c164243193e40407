#!/bin/bash
# Installs and starts everything the test suite needs on a fresh Debian machine:
# RabbitMQ (and its users of vmmig's services), PostgreSQL, MariaDB, Redis (where none
# answers), Keystone (tools/openstack), libvirt + QEMU, the test guest, and tox.
# Idempotent: what is already there is left alone. Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=600 -y -q"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need=()
port_open 5672 || need+=(rabbitmq-server)
port_open 5432 || need+=(postgresql)
port_open 3306 || need+=(mariadb-server)
port_open 6379 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-setup: installing ${need[*]}"
  $APT update -q >/dev/null
  $APT install --no-install-recommends "${need[@]}" >/dev/null
fi

if ! port_open 5672; then
  echo "test-setup: starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 60); do port_open 5672 && break; sleep 1; done
fi
if ! port_open 5432; then
  echo "test-setup: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do port_open 5432 && break; sleep 1; done
  # The tests connect as postgres over TCP without a password, as this machine kind does.
  su postgres -c "psql -qc \"ALTER USER postgres PASSWORD NULL\"" >/dev/null || true
fi
if ! port_open 3306; then
  echo "test-setup: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 30); do port_open 3306 && break; sleep 1; done
fi
if ! port_open 6379; then
  # The HA monitor's coordination tests (tooz) on Redis.
  echo "test-setup: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 >/dev/null
  for _ in $(seq 30); do port_open 6379 && break; sleep 1; done
fi
for p in 5672 5432 3306 6379; do port_open $p || { echo "test-setup: port $p still closed" >&2; exit 1; }; done

# A real Keystone in its own virtualenv (tools/openstack), for the identity tests.
OPENSTACK_START=$(date +%s)
"$HERE/openstack/setup-keystone.sh"
OPENSTACK_SECONDS=$(( $(date +%s) - OPENSTACK_START ))

# RabbitMQ users of the services (README, "Trust"): a vhost and users for a try by
# hand; each functional test run makes its own with the same script, which is why
# the tests need rabbitmqctl (this machine's broker, run as root).
"$HERE/rabbitmq-users.sh" -v vmmig-test -u vmmig-test- -e vmmig-test -t vmmig setup
"$HERE/rabbitmq-users.sh" -v vmmig-test -u vmmig-test- -e vmmig-test -t vmmig add-agent sim-a
echo "test-setup: RabbitMQ vhost vmmig-test, passwords in /etc/vmmig/rabbitmq-passwords"

# libvirt, QEMU and the test guest (tools/virt).
"$HERE/virt/vmmig-virt-env" install
"$HERE/virt/vmmig-virt-env" guest

# Real Nova and Placement in their own virtualenv (tools/openstack), for the tests against
# Nova. "openstack setup s" is the time of both OpenStack set-ups.
OPENSTACK_START=$(date +%s)
"$HERE/openstack/setup-nova.sh"
echo "openstack setup s $(( OPENSTACK_SECONDS + $(date +%s) - OPENSTACK_START ))"

python3 -m pip install -q --disable-pip-version-check 'tox>=4' 2>&1 | grep -v '^WARNING: Location' || true
echo "test-setup: ready"
