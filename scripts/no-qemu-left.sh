#!/usr/bin/env bash
# After the suites: no QEMU (or other process) that this `make test` started is still
# running, and no mount of the QEMU 11 (forky) root is left on the host. Processes are
# recognised by the NICQUAL_RUN_ID the Makefile exports to everything it runs (so QEMUs of
# other runs on the same machine do not count).
set -euo pipefail
id="${NICQUAL_RUN_ID:?no-qemu-left: NICQUAL_RUN_ID is not set (run through make)}"
left=()
for env in /proc/[0-9]*/environ; do
  pid="${env#/proc/}"; pid="${pid%/environ}"
  [ "$pid" = "$$" ] && continue
  if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx "NICQUAL_RUN_ID=$id"; then
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    case "$exe" in
      *qemu-system*) left+=("$pid $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-160)") ;;
    esac
  fi
done
if [ ${#left[@]} -gt 0 ]; then
  echo "no-qemu-left: ${#left[@]} QEMU process(es) of this run still running:" >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
root="$(bash "$(dirname "$0")/forky-root.sh" path 2>/dev/null || true)"
if [ -n "$root" ] && grep -qF " $root/" /proc/self/mountinfo; then
  echo "no-qemu-left: mounts under $root are left on the host:" >&2
  grep -F " $root/" /proc/self/mountinfo >&2
  exit 1
fi
echo "no-qemu-left: no QEMU of run $id left running, no forky-root mount left"
