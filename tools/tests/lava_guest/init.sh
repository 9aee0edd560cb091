#!/bin/sh
# PID 1 of the LAVA QEMU guest (tools/tests/lava_guest.rs packs it as /init, beside the VFIO
# guest's modules). It prepares what a LAVA test shell needs and hands the console to an
# interactive shell; LAVA then drives the guest:
# - the kernel command line has no `quiet`: LAVA waits for "Linux version" on the console;
# - LAVA's test overlay is an ext2 disk (built with libguestfs on the dispatcher) that LAVA
#   mounts with `mount /dev/disk/by-uuid/UUID -t ext2 /lava-N`; there is no udev here, so
#   the by-uuid links are made here from each ext2/3/4 superblock (the superblock starts at
#   byte 1024: magic 0xEF53 at +56, the 16-byte UUID at +104; Linux fs/ext4/ext4.h);
# - the prompt is the one the job's boot action waits for (`nicqual-lava# `).
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /dev/disk/by-uuid
# The vfio stack and e1000e (the NICs start on their kernel driver, as on a real host),
# then virtio-blk and ext4 for LAVA's overlay disk.
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci e1000e \
  virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
  crc16 crc32c_generic mbcache jbd2 ext4; do
  insmod /lib/modules/$m.ko || echo "nicqual-guest: insmod $m failed"
done
# Wait (bounded) for the overlay disk, then link every block device with a filesystem UUID.
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  ls /dev/vd? >/dev/null 2>&1 && break
  sleep 0.2
done
for d in /dev/vd? /dev/sd?; do
  [ -b "$d" ] || continue
  [ "$(od -An -tx1 -j1080 -N2 "$d" | tr -d ' \n')" = 53ef ] || continue
  hex=$(od -An -tx1 -j1128 -N16 "$d" | tr -d ' \n')
  uuid=$(echo "$hex" | sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)/\1-\2-\3-\4-/')
  [ -n "$uuid" ] && ln -sf "../../${d#/dev/}" "/dev/disk/by-uuid/$uuid" && echo "nicqual-guest: $d is UUID $uuid"
done
# nicqual pins its DMA memory through VFIO.
ulimit -l unlimited
echo "nicqual-guest: ready ($(uname -r), $(cut -d' ' -f1 /proc/uptime)s)"
export PS1='nicqual-lava# '
exec setsid cttyhack /bin/sh
