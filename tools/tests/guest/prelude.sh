# Sourced by the guests' /init scripts (packed as /lib/prelude.sh): busybox applets,
# the pseudo filesystems, a quiet console, and the boot mark the host reads.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
# Keep the console for this script's output: the kernel log is printed at the end.
echo 1 > /proc/sys/kernel/printk
echo "@@NQ boot $(cut -d' ' -f1 /proc/uptime)s $(uname -r)"
