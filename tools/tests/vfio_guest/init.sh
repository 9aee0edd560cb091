#!/bin/sh
# PID 1 of the VFIO guest (tools/tests/vfio_guest.rs packs it as /init). Every line the
# host reads starts with "@@NQ "; blocks of output sit between "@@NQ begin NAME" and
# "@@NQ end NAME ...". Every command that could wait is bounded with `timeout`, and the
# guest always powers off at the end (QEMU runs with -no-reboot).
. /lib/prelude.sh

block() { # NAME COMMAND...: run COMMAND bounded, its stdout between markers
  name=$1
  shift
  echo "@@NQ begin $name"
  timeout 200 "$@" 2>/tmp/$name.err
  rc=$?
  echo
  echo "@@NQ end $name rc=$rc"
  echo "@@NQ begin $name.stderr"
  cat /tmp/$name.err
  echo "@@NQ end $name.stderr rc=0"
}

# The modules of the guest kernel, in dependency order. e1000e is loaded so that the NICs
# start bound to their kernel driver, as on a real machine.
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci e1000e; do
  insmod /lib/modules/$m.ko || echo "@@NQ error insmod $m"
done

nics=""
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x8086 ] && [ "$(cat $d/device)" = 0x10d3 ]; then
    nics="$nics ${d##*/}"
  fi
done
driver_of() {
  l=$(readlink /sys/bus/pci/devices/$1/driver)
  if [ -n "$l" ]; then basename "$l"; else echo none; fi
}
for a in $nics; do
  # Give e1000e a bounded moment to claim the function.
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/bus/pci/devices/$a/driver ] && break; sleep 0.2; done
  echo "@@NQ nic $a before $(driver_of $a)"
done
set -- $nics
A=$1
B=$2

block devices-before nicqual devices
# Bind safety: with its interface up, the second NIC is refused (exit 2) and stays on
# e1000e; brought down again (which drops its routes), it is bound below as usual.
ifb=$(ls /sys/bus/pci/devices/$B/net 2>/dev/null | head -n 1)
echo "@@NQ iface $B ${ifb:-none}"
ip link set "$ifb" up || echo "@@NQ error ip link set $ifb up"
block bind-up-$B nicqual bind $B
echo "@@NQ nic $B while-up $(driver_of $B)"
ip link set "$ifb" down || echo "@@NQ error ip link set $ifb down"
for a in $nics; do
  block bind-$a nicqual bind $a
done
block devices-bound nicqual devices
ulimit -l unlimited

# The qualification run the host asserts on, then the deliberate bug on the other NIC.
block qualify nicqual qualify --device vfio:$A --json -
block bug nicqual qualify --device vfio:$B --json - --inject-bug dma-unmapped-iova

for a in $nics; do
  block unbind-$a nicqual unbind $a
  echo "@@NQ nic $a after $(driver_of $a)"
done

echo "@@NQ begin dmesg"
dmesg | tail -n 150
echo "@@NQ end dmesg rc=0"
echo "@@NQ done $(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
