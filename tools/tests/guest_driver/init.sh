#!/bin/sh
# PID 1 of the guest-driver guest (tools/tests/guest_driver.rs packs it as /init): Linux's
# own e1000e against nicqual's 82574L model, served over vfio-user. Every line the host
# reads starts with "@@NQ "; blocks sit between "@@NQ begin NAME" and "@@NQ end NAME rc=N".
# Every command that could wait is bounded, and the guest always powers off at the end.
. /lib/prelude.sh

block() { # NAME COMMAND...: run COMMAND bounded, its output between markers
  name=$1
  shift
  echo "@@NQ begin $name"
  timeout 60 "$@" 2>&1
  rc=$?
  echo
  echo "@@NQ end $name rc=$rc"
}

for d in /sys/bus/pci/devices/*; do
  echo "@@NQ pci ${d##*/} $(cat $d/vendor):$(cat $d/device) class $(cat $d/class)"
done
insmod /lib/modules/e1000e.ko || echo "@@NQ error insmod e1000e"
# Probe, then bring the port up and wait (bounded) for the model's link.
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
block link-up ip link set eth0 up
for i in $(seq 1 20); do
  [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && break
  sleep 1
done
echo "@@NQ carrier $(cat /sys/class/net/eth0/carrier 2>/dev/null || echo none)"
block links ip link
block interrupts grep -E 'eth0|CPU' /proc/interrupts
block dmesg dmesg
echo "@@NQ done"
poweroff -f
