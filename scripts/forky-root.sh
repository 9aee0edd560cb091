#!/usr/bin/env bash
# QEMU 11.1 from Debian forky, run on this (bookworm) host from a minimal chroot.
#
#   forky-root.sh build          build the root once (cached), print its path
#   forky-root.sh path           print the root's path if it is built and valid, else fail
#   forky-root.sh run ARGS...    run `qemu-system-x86_64 ARGS...` from the root
#   forky-root.sh exec CMD...    run any command inside the root (same mounts)
#
# The root lives in $NICQUAL_FORKY_ROOT, else $XDG_CACHE_HOME/nicqual/forky, else
# /var/cache/nicqual/forky (as root) or ~/.cache/nicqual/forky. It is reused while its
# stamp names the same recipe and QEMU is inside; `build` takes a lock, so two test runs
# never build it at once.
#
# `run`/`exec` need root (chroot, mounts). The bind mounts of /dev, /proc, /sys and /tmp
# are made in a private mount namespace (unshare -m), so they exist only for the process
# and vanish with it, however it ends (SIGKILL included): no mount is ever left on the
# host, and two runs at once do not see each other's mounts. The command is exec'd (the
# caller's PID becomes QEMU's), so killing that PID ends QEMU; descriptors are inherited.
set -euo pipefail

RECIPE="forky minbase qemu-system-x86 v1"
default_root() {
  if [ -n "${NICQUAL_FORKY_ROOT:-}" ]; then echo "$NICQUAL_FORKY_ROOT"
  elif [ -n "${XDG_CACHE_HOME:-}" ]; then echo "$XDG_CACHE_HOME/nicqual/forky"
  elif [ "$(id -u)" -eq 0 ]; then echo /var/cache/nicqual/forky
  else echo "$HOME/.cache/nicqual/forky"; fi
}
ROOT="$(default_root)"
STAMP="$ROOT.stamp"

die() { echo "forky-root: $*" >&2; exit 1; }

valid() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ] && [ -x "$ROOT/usr/bin/qemu-system-x86_64" ]
}

# The Debian mirror apt already uses (deb822 or one-line sources), else deb.debian.org.
mirror() {
  if [ -n "${NICQUAL_DEBIAN_MIRROR:-}" ]; then echo "$NICQUAL_DEBIAN_MIRROR"; return; fi
  local m
  m="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -E '/debian/?( |$)' | grep -v security | head -n1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')"
  echo "${m:-http://deb.debian.org/debian}"
}

build() {
  valid && { echo "$ROOT"; return 0; }
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing; as root: apt-get install -y mmdebstrap (or make deps)"
  [ "$(id -u)" -eq 0 ] || die "building the forky root needs root (mmdebstrap in root mode)"
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"
  flock 9
  valid && { echo "$ROOT"; return 0; }   # another run built it while we waited
  local tmp="$ROOT.tmp.$$"
  rm -rf "$tmp" "$ROOT" "$STAMP"
  # forky's Release file is past its Valid-Until on some mirrors; its signature is still
  # checked against the host's Debian keyring.
  echo "forky-root: building $ROOT from $(mirror) (one time, about 300 MB)" >&2
  if ! mmdebstrap --quiet --variant=minbase --include=qemu-system-x86 \
        --aptopt='Acquire::Check-Valid-Until "false"' forky "$tmp" "$(mirror)" >&2; then
    rm -rf "$tmp"
    die "mmdebstrap failed (network? mirror $(mirror))"
  fi
  [ -x "$tmp/usr/bin/qemu-system-x86_64" ] || { rm -rf "$tmp"; die "built root has no qemu-system-x86_64"; }
  mv "$tmp" "$ROOT"
  echo "$RECIPE" >"$STAMP"
  echo "$ROOT"
}

enter() {
  valid || die "no QEMU 11 root at $ROOT; build it with: bash scripts/forky-root.sh build (or make deps)"
  [ "$(id -u)" -eq 0 ] || die "running QEMU 11 from the forky root needs root (chroot and bind mounts)"
  # Inside a new mount namespace: slave propagation, so nothing we mount reaches the host.
  exec unshare --mount --propagation slave -- /bin/sh -euc '
    root=$1; shift
    for d in dev proc sys tmp; do
      mount --rbind "/$d" "$root/$d"
      mount --make-rslave "$root/$d"
    done
    exec chroot "$root" "$@"
  ' forky-enter "$ROOT" "$@"
}

case "${1:-}" in
  build) build ;;
  path) valid || die "no QEMU 11 root at $ROOT; build it with: bash scripts/forky-root.sh build (or make deps)"; echo "$ROOT" ;;
  run) shift; enter /usr/bin/qemu-system-x86_64 "$@" ;;
  exec) shift; enter "$@" ;;
  *) die "usage: forky-root.sh build|path|run QEMU-ARGS...|exec CMD..." ;;
esac
