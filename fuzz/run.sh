#!/usr/bin/env bash
# Fuzzes Phoenix's runbook loader: every target for a bounded time, one after the other.
# Exits non-zero as soon as a target finds a crash (a panic, or a broken invariant in
# fuzz_targets/check.rs); the input is saved under fuzz/artifacts/<target>/ and can be
# replayed with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
#
# usage: fuzz/run.sh [TARGET...]      env: FUZZ_SECONDS (per target, default 60), FUZZ_JOBS (1)
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's nightly
# flags. New interesting inputs go to fuzz/corpus/<target> (not committed); the seeds in
# fuzz/seeds/<target> (the runbooks of tests/cases and runbooks/) are read, never written.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  echo "== fuzzing $t for ${seconds}s" >&2
  # -timeout: an input that takes more than 10 s is reported as a hang (a crash here).
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
  cargo fuzz run "$t" "${dirs[@]}" -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${parallel[@]}"
done
echo "fuzzing found no crash in: ${targets[*]}" >&2
