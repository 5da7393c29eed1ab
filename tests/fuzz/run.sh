#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs them:
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]
# replays every committed regression input (tests/fuzz/regressions/<harness>/), then fuzzes each
# harness for SECONDS (default 30; 0: replay only) from its committed seeds
# (tests/fuzz/corpus/<harness>/) and its dictionary. New inputs go to build-fuzz/corpus/<harness>/,
# crashes to build-fuzz/artifacts/<harness>/, logs to build-fuzz/logs/<harness>.log; the last line
# per harness gives executions and coverage. Exits non-zero on any crash, leak or UB report.
# FUZZ_BUILD=DIR builds elsewhere; FUZZ_JOBS=N builds with N jobs (default: nproc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-30}
shift || true
all=(safetensors checkpoint state idx cifar svhn jpeg)
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all[@]}")

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DINSITU_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-$(nproc)}" > /dev/null

export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/logs"
status=0
for h in "${harnesses[@]}"; do
  bin=$build/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz: no harness '$h' (${all[*]})" >&2; exit 2; }
  regs=("$here"/regressions/"$h"/*)
  if [ -e "${regs[0]}" ]; then
    if ! "$bin" -close_fd_mask=1 "${regs[@]}" > "$build/logs/$h.replay.log" 2>&1; then
      echo "fuzz $h: a regression input fails again (see $build/logs/$h.replay.log)" >&2
      status=1
      continue
    fi
    echo "fuzz $h: ${#regs[@]} regression inputs replayed"
  fi
  [ "$seconds" -gt 0 ] || continue
  mkdir -p "$build/corpus/$h" "$build/artifacts/$h"
  dict=()
  [ -f "$here/$h.dict" ] && dict=(-dict="$here/$h.dict")
  if "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 -close_fd_mask=1 -print_final_stats=1 \
       "${dict[@]}" -artifact_prefix="$build/artifacts/$h/" "$build/corpus/$h" "$here/corpus/$h" \
       > "$build/logs/$h.log" 2>&1; then
    result=ok
  else
    result="FAILED (see $build/logs/$h.log and $build/artifacts/$h/)"
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/logs/$h.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$build/logs/$h.log" | tail -1 || echo 'cov: ?')
  echo "fuzz $h: ${seconds}s, ${execs} executions, ${cov}, corpus $(ls "$build/corpus/$h" | wc -l) files: $result"
done
exit $status
