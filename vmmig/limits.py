"""The bounds of what a request may ask, in one place: the CLI and the conductor check them.

Each bound comes from what stores or carries the value, so a request past it
is refused when it is made instead of failing later, half-recorded.
"""

#: ``migrations.id`` is an SQL INTEGER: 32 bits, signed, on PostgreSQL and MariaDB.
MIGRATION_ID_MAX = 2 ** 31 - 1

#: ``migrations.hold_reason`` is a VARCHAR(255); PostgreSQL and MariaDB refuse longer text.
HOLD_REASON_MAX = 255

#: Host and instance names are VARCHAR(255) columns too.
NAME_MAX = 255

#: QEMU refuses a downtime limit above 2000 s (MAX_MIGRATE_DOWNTIME in migration/options.c).
MAX_DOWNTIME_MS_MAX = 2000 * 1000

#: libvirt refuses a migration bandwidth above INT64_MAX bytes/s, in MiB/s
#: (QEMU_DOMAIN_MIG_BANDWIDTH_MAX in src/qemu/qemu_domain.h).
BANDWIDTH_MIBPS_MAX = (2 ** 63 - 1) // (1024 * 1024)

#: Every other whole-number option of a migration (steps, timeouts) is a 32-bit value
#: once it reaches libvirt or the simulator's settings; nothing sensible is larger.
COUNT_MAX = 2 ** 31 - 1
