#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time (FUZZ_SECS, default 45 s each) from the
# committed seeds in fuzz/corpus/<target>; new inputs go to the scratch fuzz/corpus-run/.
# On a fresh machine it installs what cargo fuzz needs (rustup's nightly toolchain, minimal
# profile, ~1 min; cargo-fuzz from crates.io, ~2 min to build): never a silent skip.
# Usage: scripts/fuzz-smoke.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECS:-45}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing the nightly toolchain (cargo fuzz needs -Z sanitizer flags)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-smoke: no fuzz targets found" >&2; exit 1; }
cargo +nightly fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "corpus-run/$t" "corpus/$t"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run -s none "$t" "corpus-run/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz-smoke: $t FAILED (crash input under fuzz/artifacts/$t/; replay: cargo +nightly fuzz run $t <file>)" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "fuzz-smoke: $t ok: $runs executions in ${secs}s ($rate exec/s), no crash"
  rm -f "$log"
done
