#!/bin/busybox sh
# /init (PID 1) of the vmmig test guest: a Debian kernel + this busybox-static initramfs.
# Built into $VMMIG_VIRT_DIR/img/initrd.gz by `vmmig-virt-env guest`. Everything it says goes to the
# console (console=ttyS0, a <serial type='file'> on the host); machine-readable lines start with GUEST-.
#
# Kernel command line (all optional):
#   dirty_mb=N    MiB rewritten every tick (dirty rate = dirty_mb/tick)            [16]
#   tick=S        tick period in seconds, fractions allowed (0.5)                   [1]
#   chk_mb=N      fixed random buffer that is checksummed, never rewritten          [4]
#   mem_every=N   print GUEST-MEM every N ticks                                     [1]
#   disk_mb=N     size of the random pattern written once to every virtio disk      [8]
#   disk_tick=0|1 write a scratch sector of vda at every tick                       [1]
#   ip=A[/P]      static IPv4 address of eth0 (prefix 24 unless given)
#
# Console protocol:
#   GUEST-BOOTED up=.. dirty_mb=.. tick=.. ...        init started
#   GUEST-SUM0 <md5>                                   md5 of the chk buffer at boot
#   GUEST-NET eth0 mac=.. ip=..                        NIC configured
#   GUEST-DISK-WRITTEN <md5> dev=vdX mb=N               first boot of this disk: pattern written
#   GUEST-DISK-OK <md5> dev=vdX mb=N                    header found, pattern verified
#   GUEST-DISK-BAD expected=<md5> got=<md5> dev=vdX     header found, pattern differs
#   GUEST-TICK n up=<uptime>                           one per tick
#   GUEST-MEM n=<tick> sum=<md5 chk> slice=<k> dst=ok|BAD ok=yes|NO
#   GUEST-POWEROFF                                     ACPI power button seen, powering off
# Disk layout (per virtio disk): sector 0 = header "VMMIG-DISK-V1 <md5> <mb>", sector 8 = scratch
# (tick writes, vda only), pattern = <mb> MiB of random data from offset 1 MiB. Never rewritten once
# the header exists, so a checksum survives cold migrations, evacuations and reboots.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /run /mnt /tmp
mount -t tmpfs -o size=1m tmpfs /run

DIRTY_MB=16 TICK=1 CHK_MB=4 MEM_EVERY=1 DISK_MB=8 DISK_TICK=1 IP=
for a in $(cat /proc/cmdline); do
  case $a in
    dirty_mb=*) DIRTY_MB=${a#*=} ;;
    tick=*) TICK=${a#*=} ;;
    chk_mb=*) CHK_MB=${a#*=} ;;
    mem_every=*) MEM_EVERY=${a#*=} ;;
    disk_mb=*) DISK_MB=${a#*=} ;;
    disk_tick=*) DISK_TICK=${a#*=} ;;
    ip=*) IP=${a#*=} ;;
  esac
done
[ "$MEM_EVERY" -ge 1 ] 2>/dev/null || MEM_EVERY=1
[ "$CHK_MB" -ge 1 ] 2>/dev/null || CHK_MB=1

# /proc/uptime in centiseconds (no leading zeros: $((010)) would be octal)
now_cs() {
  read -r u _ < /proc/uptime
  u=${u%.*}${u#*.}
  u=${u#"${u%%[!0]*}"}
  echo "${u:-0}"
}
# "1" -> 100, "0.5" -> 50, "2.25" -> 225
TICK_CS=$(i=${TICK%%.*}; f=; case $TICK in *.*) f=${TICK#*.};; esac; f=${f}00; f=${f%"${f#??}"};
          f=${f#0}; echo $(( ${i:-0} * 100 + ${f:-0} )))
[ "$TICK_CS" -ge 1 ] || TICK_CS=100
uptime_s() { read -r u _ < /proc/uptime; echo "$u"; }

echo "GUEST-BOOTED up=$(uptime_s) kernel=$(uname -r) dirty_mb=$DIRTY_MB tick=$TICK chk_mb=$CHK_MB" \
     "mem_every=$MEM_EVERY disk_mb=$DISK_MB ip=${IP:-none}"

# ---- kernel modules (order computed at build time: dependencies first)
for m in $(cat /lib/mod/order); do
  insmod "/lib/mod/$m.ko" 2>/dev/null || echo "GUEST-WARN insmod $m failed"
done

# ---- ACPI power button -> clean power-off (libvirt dom.shutdown() presses it)
mkdir -p /etc/acpi/PWRF
cat > /etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "GUEST-POWEROFF up=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
sync
poweroff -f
EOF
chmod +x /etc/acpi/PWRF/00000080
printf 'PWRF PWRF/00000080\n' > /etc/acpid.conf     # event "PWRF" -> run that file
i=0
while ! grep -qs "Power Button" /sys/class/input/*/name && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
i=0
while ! ls /dev/input/event* >/dev/null 2>&1 && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done
if grep -qs "Power Button" /sys/class/input/*/name; then
  acpid -c /etc/acpi -a /etc/acpid.conf -l /run/acpid.log -p /run/acpid.pid
else
  echo "GUEST-WARN no ACPI power button: dom.shutdown() will not work"
fi

# ---- memory: chk (fixed, checksummed), src (random), dst (rewritten from src every tick)
mount -t tmpfs -o size=$((DIRTY_MB * 2 + CHK_MB + 2))m tmpfs /mnt
dd if=/dev/urandom of=/mnt/chk bs=1M count="$CHK_MB" 2>/dev/null
SUM0=$(md5sum < /mnt/chk | cut -c1-32)
echo "GUEST-SUM0 $SUM0"
if [ "$DIRTY_MB" -gt 0 ]; then
  dd if=/dev/urandom of=/mnt/src bs=1M count="$DIRTY_MB" 2>/dev/null
  cp /mnt/src /mnt/dst
  # md5 of every 1 MiB slice of src: GUEST-MEM verifies one slice of dst (the memory being
  # dirtied) per check, in rotation, so a check costs chk_mb+1 MiB of md5 whatever dirty_mb is
  k=0
  while [ $k -lt "$DIRTY_MB" ]; do
    dd if=/mnt/src bs=1M skip=$k count=1 2>/dev/null | md5sum | cut -c1-32
    k=$((k + 1))
  done > /run/slices
fi

mem_check() { # $1 = tick number
  s=$(md5sum < /mnt/chk | cut -c1-32)
  ok=yes; [ "$s" = "$SUM0" ] || ok=NO
  extra=
  if [ "$DIRTY_MB" -gt 0 ]; then
    k=$(( ($1 / MEM_EVERY) % DIRTY_MB ))
    want=$(sed -n "$((k + 1))p" /run/slices)
    got=$(dd if=/mnt/dst bs=1M skip=$k count=1 2>/dev/null | md5sum | cut -c1-32)
    d=ok; [ "$got" = "$want" ] || { d=BAD; ok=NO; }
    extra=" slice=$k dst=$d"
  fi
  echo "GUEST-MEM n=$1 sum=$s$extra ok=$ok"
}

# ---- network
i=0
while [ ! -e /sys/class/net/eth0 ] && grep -qsx 0x0001 /sys/bus/virtio/devices/*/device \
      && [ $i -lt 30 ]; do
  sleep 0.1; i=$((i + 1))
done
if [ -e /sys/class/net/eth0 ]; then
  ip link set lo up
  ip link set eth0 up
  case $IP in
    "") ;;
    */*) ip addr add "$IP" dev eth0 ;;
    *) ip addr add "$IP/24" dev eth0 ;;
  esac
  echo "GUEST-NET eth0 mac=$(cat /sys/class/net/eth0/address) ip=${IP:-none}"
fi

# ---- disks: write a pattern once, verify it at every later boot (and on hot-plug)
disk_check() { # $1 = vda, vdb, ...
  dev=$1 b=/dev/$1
  [ -b "$b" ] || return 0
  hdr=$(dd if="$b" bs=512 count=1 2>/dev/null | tr -d '\000' | head -n 1)
  case $hdr in
    "VMMIG-DISK-V1 "*)
      set -- $hdr
      want=$2 mb=$3
      got=$(dd if="$b" bs=1M skip=1 count="$mb" 2>/dev/null | md5sum | cut -c1-32)
      if [ "$got" = "$want" ]; then
        echo "GUEST-DISK-OK $got dev=$dev mb=$mb"
      else
        echo "GUEST-DISK-BAD expected=$want got=$got dev=$dev mb=$mb"
      fi ;;
    *)
      size_mb=$(( $(cat /sys/block/$dev/size) / 2048 ))
      mb=$DISK_MB
      [ $((size_mb - 2)) -lt "$mb" ] && mb=$((size_mb - 2))
      if [ "$mb" -lt 1 ]; then echo "GUEST-DISK-SKIP dev=$dev size_mb=$size_mb"; return 0; fi
      if ! dd if=/dev/urandom of="$b" bs=1M seek=1 count="$mb" conv=fsync 2>/dev/null; then
        echo "GUEST-DISK-ERROR write failed dev=$dev"; return 0
      fi
      echo 3 > /proc/sys/vm/drop_caches
      sum=$(dd if="$b" bs=1M skip=1 count="$mb" 2>/dev/null | md5sum | cut -c1-32)
      echo "VMMIG-DISK-V1 $sum $mb" | dd of="$b" bs=512 count=1 conv=sync,fsync 2>/dev/null
      echo "GUEST-DISK-WRITTEN $sum dev=$dev mb=$mb" ;;
  esac
}
i=0
while ! ls /sys/block/vd* >/dev/null 2>&1 && grep -qsx 0x0002 /sys/bus/virtio/devices/*/device \
      && [ $i -lt 30 ]; do                  # a virtio disk exists but its vdX is not there yet
  sleep 0.1; i=$((i + 1))
done
SEEN=
for d in /sys/block/vd*; do
  [ -e "$d" ] || continue
  disk_check "${d##*/}"; SEEN="$SEEN ${d##*/}"
done

# ---- tick loop: fixed-rate schedule (sleep to the next deadline, do not drift)
n=0
start=$(now_cs)
while :; do
  n=$((n + 1))
  [ "$DIRTY_MB" -gt 0 ] && dd if=/mnt/src of=/mnt/dst bs=1M count="$DIRTY_MB" conv=notrunc 2>/dev/null
  [ "$DISK_TICK" = 1 ] && [ -b /dev/vda ] && \
    echo "tick $n" | dd of=/dev/vda bs=512 seek=8 count=1 conv=sync,fsync 2>/dev/null
  echo "GUEST-TICK $n up=$(uptime_s)"
  [ $((n % MEM_EVERY)) -eq 0 ] && mem_check $n
  for d in /sys/block/vd*; do              # hot-plugged disks (attachDevice)
    [ -e "$d" ] || continue
    case " $SEEN " in *" ${d##*/} "*) continue ;; esac
    disk_check "${d##*/}"; SEEN="$SEEN ${d##*/}"
  done
  now=$(now_cs)
  left=$((start + n * TICK_CS - now))
  if [ $left -gt 0 ]; then
    sleep "$((left / 100)).$((left % 100 / 10))$((left % 10))"
  else
    start=$((now - n * TICK_CS))            # overran: restart the schedule, no burst
  fi
done
# x
