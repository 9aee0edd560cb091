#!/usr/bin/env bash
# make test-lava: LAVA's own dispatcher runs the QEMU job (lava/jobs/qemu-nicqual.yaml) with
# `lava-run`, no server, on a device configuration for this machine (TCG, no KVM), and this
# script reads LAVA's results itself (lava-run exits 0 whatever the tests found):
#   1. Debian's lava-dispatcher (make deps installs it) and lava-server's device-type
#      templates (apt-get download + dpkg -x, no server install; cached);
#   2. the result parser's own tests (it refuses malformed and missing results);
#   3. the guest image: Debian kernel + initramfs with this build of nicqual
#      (tools/tests/lava_guest.rs);
#   4. the job and the device configuration rendered (the device dictionary
#      lava/devices/qemu-nicqual.jinja2 with the job's context, as lava-server renders it),
#      and LAVA's schema code on the test definition, both job templates and the device;
#   5. lava-run, bounded; then every check of the VFIO run reported (none failing) and the
#      lost-vector run's checks of vector 1 (TxQ0) failing.
# Processes inherit NICQUAL_RUN_ID from make, so `make no-qemu-left` sees any QEMU left.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3 # Debian's: LAVA's modules live in its dist-packages
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-target}
NICQUAL="$TARGET/release/nicqual"
BOUND=${NICQUAL_LAVA_BOUND:-900} # seconds for lava-run (the job's own timeout is 15 min)

if [ "$(id -u)" -ne 0 ]; then
  echo "test-lava: lava-run needs root (it works in /var/lib/lava/dispatcher and builds LAVA's overlay disk); run as root" >&2
  exit 1
fi
if [ ! -x /usr/bin/lava-run ]; then
  echo "test-lava: lava-dispatcher is not installed; installing with scripts/install-deps.sh" >&2
  bash scripts/install-deps.sh
fi
version=$(dpkg-query -W -f='${Version}' lava-dispatcher)

# lava-server's device-type templates, of the dispatcher's version.
cache=/var/cache/nicqual/lava-server-$version
[ -w /var/cache ] || cache="${TMPDIR:-/tmp}/nicqual-lava-server-$version"
templates="$cache/usr/share/lava-server/device-types"
if [ ! -f "$templates/qemu.jinja2" ]; then
  mkdir -p "$cache"
  dl=$(mktemp -d)
  (cd "$dl" && apt-get download -q "lava-server=$version" >/dev/null 2>&1) \
    || { echo "test-lava: apt-get download lava-server=$version failed (apt-get update?)" >&2; exit 1; }
  dpkg -x "$dl"/lava-server_*.deb "$cache"
  rm -rf "$dl"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nicqual-lava.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "test-lava: result parser tests"
$PY -m unittest discover -s lava/ci -q

echo "test-lava: guest image"
if ! NICQUAL_LAVA_GUEST_DIR="$work/guest" $CARGO test --release -q -p nicqual --test lava_guest -- --ignored \
  --nocapture lava_guest_image >"$work/guest.log" 2>&1 || [ ! -s "$work/guest/initramfs.cpio" ]; then
  cat "$work/guest.log" >&2
  echo "test-lava: the guest image was not built" >&2
  exit 1
fi
grep "lava guest:" "$work/guest.log"

# The test definition as this checkout has it, in a git repository for `from: git`.
mkdir -p "$work/defs/lava"
cp lava/nicqual-qualify.yaml "$work/defs/lava/"
git -C "$work/defs" init -q
git -C "$work/defs" add lava
git -C "$work/defs" -c user.name=nicqual -c user.email=ci@nicqual.invalid commit -q -m "test definition under test"

$PY lava/ci/lava_ci.py render-job lava/jobs/qemu-nicqual.yaml "$work/job.yaml" \
  KERNEL_URL="file://$work/guest/vmlinuz" RAMDISK_URL="file://$work/guest/initramfs.cpio" \
  DEFINITION_REPO="$work/defs"
$PY lava/ci/lava_ci.py render-job lava/jobs/x86-nicqual.yaml "$work/x86-job.yaml" \
  NIC_TAG=nic-82574l KERNEL_BUILD=ci KERNEL_URL=http://lab.invalid/bzImage \
  RAMDISK_URL=http://lab.invalid/nicqual-initramfs.cpio.gz DEFINITION_REPO=http://lab.invalid/nicqual.git \
  PCI_ADDRESS=0000:03:00.0
$PY lava/ci/lava_ci.py render-device lava/devices/qemu-nicqual.jinja2 "$templates" "$work/job.yaml" >"$work/device.yaml"
echo "dispatcher_ip: 127.0.0.1" >"$work/dispatcher.yaml"
$PY lava/ci/lava_ci.py validate lava/nicqual-qualify.yaml "$work/job.yaml" "$work/x86-job.yaml"
$PY /usr/share/lava-common/lava-schema.py device --no-render "$work/device.yaml"

# What each run must report: the case names nicqual gives its checks (--list-checks --lava).
"$NICQUAL" qualify --device vfio:0000:00:04.0 --list-checks --lava >"$work/expect-vfio"
"$NICQUAL" qualify --device model:i82574l --queues 1 --list-checks --lava >"$work/expect-lost-vector"

echo "test-lava: lava-run (bounded to ${BOUND}s)"
t0=$(date +%s)
rc=0
LIBGUESTFS_BACKEND_SETTINGS=force_tcg timeout -k 20 "$BOUND" $PY /usr/bin/lava-run --job-id "nicqual-$$" \
  --output-dir "$work/out" --device "$work/device.yaml" --dispatcher "$work/dispatcher.yaml" \
  "$work/job.yaml" >"$work/lava-run.log" 2>&1 || rc=$?
echo "test-lava: lava-run exited $rc after $(($(date +%s) - t0)) s"
mkdir -p "$TARGET/lava"
cp "$work/lava-run.log" "$TARGET/lava/lava-run.log"

ok=0
$PY lava/ci/lava_ci.py check "$work/lava-run.log" --suite nicqual-vfio --expect "$work/expect-vfio" \
  --pass vfio-setup --pass dma-tx --pass iommu-faults --pass vector-RxQ0 --pass vector-TxQ0 --pass vector-Other \
  --pass loopback-1514 --pass q2.rss-hash --pass nicqual-bind --pass nicqual-unbind --pass nicqual-run \
  --pass nicqual-verdict || ok=1
$PY lava/ci/lava_ci.py check "$work/lava-run.log" --suite nicqual-lost-vector --expect "$work/expect-lost-vector" \
  --fail msix-table-1 --fail vector-TxQ0 --fail nicqual-verdict \
  --pass vector-RxQ0 --pass vector-Other --pass loopback-1514 --pass nicqual-run || ok=1
if [ "$ok" -ne 0 ] || [ "$rc" -ne 0 ]; then
  echo "test-lava: FAILED; lava-run's log is in $TARGET/lava/lava-run.log" >&2
  exit 1
fi
echo "test-lava: passed (lava-run log in $TARGET/lava/lava-run.log)"
