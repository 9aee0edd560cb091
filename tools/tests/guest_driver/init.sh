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
  timeout ${BOUND:-60} "$@" 2>&1
  rc=$?
  echo
  echo "@@NQ end $name rc=$rc"
}

wait_carrier() { # bounded wait for the link; prints the carrier as a mark named $1
  for i in $(seq 1 20); do
    [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && break
    sleep 1
  done
  echo "@@NQ $1 $(cat /sys/class/net/eth0/carrier 2>/dev/null || echo none)"
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
# Traffic through the model to the responder at the far end of its cable (10.0.2.2), then
# a pause long enough for the driver's watchdog (every 2 s) to notice a hang or a removal.
ip addr add 10.0.2.15/24 dev eth0 2>/dev/null
block ping ping -c 6 -i 0.5 -W 1 10.0.2.2
sleep 8
echo "@@NQ carrier-after $(cat /sys/class/net/eth0/carrier 2>/dev/null || echo none)"
block links ip link
block ethtool-i ethtool -i eth0
block ethtool-d ethtool -d eth0
block ethtool-S ethtool -S eth0
# The offline self-test closes the interface, runs register, EEPROM, interrupt (legacy
# INTx), loopback and link tests, and opens it again.
BOUND=120 block ethtool-t ethtool -t eth0 offline
wait_carrier carrier-after-test
block ping-after-test ping -c 3 -W 2 10.0.2.2
block interrupts grep -E 'eth0|CPU' /proc/interrupts
block dmesg dmesg
echo "@@NQ done"
poweroff -f
