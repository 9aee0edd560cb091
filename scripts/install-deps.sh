#!/usr/bin/env bash
# Install what the test suites need (Debian packages). Root installs with apt-get; anyone
# else gets a clear list of what is missing. In CI (CI=1 or running as root) a package
# that cannot be installed is an error: suites are never skipped silently.
set -euo pipefail
# lava-dispatcher: LAVA's stand-alone `lava-run` for make test-lava (scripts/test-lava.sh).
pkgs=(qemu-system-x86 linux-image-amd64 busybox-static ethtool chromium tshark mmdebstrap lava-dispatcher)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# QEMU 11.1 (the second oracle, and the guest-driver tests) runs from a Debian forky root
# built by mmdebstrap into a cache dir once (scripts/forky-root.sh).
forky_root() {
  if [ "$(id -u)" -ne 0 ]; then
    bash "$(dirname "$0")/forky-root.sh" path >/dev/null 2>&1 \
      || { echo "install-deps: the QEMU 11 root is missing; as root: bash scripts/forky-root.sh build" >&2; return 1; }
    return 0
  fi
  bash "$(dirname "$0")/forky-root.sh" build >/dev/null
}
if [ ${#missing[@]} -eq 0 ]; then
  forky_root
  echo "install-deps: all present (${pkgs[*]}, QEMU 11 root $(bash "$(dirname "$0")/forky-root.sh" path))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# tshark asks whether non-root users may capture; answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
forky_root
echo "install-deps: done"
