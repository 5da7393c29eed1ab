#!/usr/bin/env bash
# The GPU check in one command, for a GPU node with only the CUDA toolkit, a C/C++ compiler, CMake
# and Python (PyTorch for the peer benchmarks) and the folder scripts/gather-gpu-debs.sh made
# beside the tree: unpacks those .debs into a private prefix, builds, runs every test, runs
# compute-sanitizer (memcheck, racecheck, synccheck) on the CUDA tests and the GPU benchmarks, and
# writes logs and CSVs into OUT_DIR. Each step has its own log, a time limit and a PASS/FAIL/SKIP
# line; a failing step never stops the next; the summary comes last. See docs/GPU-CHECK.md.
#
#   scripts/gpu-check.sh OUT_DIR [--debs DIR] [--budget SECONDS] [--skip STEP[,STEP...]] [--build-dir DIR]
#
#   --debs DIR     the gathered .debs (default .gpu-debs beside the tree's scripts/)
#   --budget S     the whole run's wall-clock budget (default 540: one 10-minute device call with
#                  room for the transfers); a step that would not fit is SKIPped, named
#   --skip STEPS   leave steps out: env unpack build tests memcheck racecheck synccheck bench
#   --build-dir D  default build-gpucheck (git-ignored, reused when present)
#   --scale F      multiply every step's limit by F (a slow machine: the CPU proof in a chroot)
#   --full-bench   bench_fused_conv's full sweep (default --quick, to fit one device call)
#
# OUT_DIR receives at most 8 files: summary.txt, steps.csv, logs.tar.gz (every step's log, the
# CTest JUnit report), and up to 5 CSVs of the GPU benchmarks.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/scripts/gpu-check.sh"

# Step time limits (seconds), each cut to what is left of the budget; the order is the run's.
STEPS=(env unpack build tests memcheck racecheck synccheck bench)
declare -A LIMIT=([env]=30 [unpack]=60 [build]=240 [tests]=200 [memcheck]=90 [racecheck]=90 [synccheck]=60
  [bench]=180)
SUMMARY_RESERVE=15 # seconds kept for the summary and the log bundle
KILL_GRACE=10      # after a step's limit, SIGTERM; this much later, SIGKILL

# ---- one step's body, run as `gpu-check.sh --step NAME` under timeout (environment from the driver)
note() { echo "$*" >"$WORK/$STEP.note"; }
skip() { note "$*"; exit 77; }

step_env() {
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -a)"
  grep PRETTY_NAME /etc/os-release 2>/dev/null
  echo "cores: $(nproc)"
  echo "tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
  for t in cc c++ cmake ninja nvcc python3 compute-sanitizer; do
    printf '%-18s %s\n' "$t:" "$(command -v "$t" || echo missing)"
  done
  cc --version | head -1
  cmake --version | head -1
  command -v nvcc >/dev/null && nvcc --version | tail -2
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  [ -n "$CUDNN_ARGS" ] && echo "cuDNN: $CUDNN_ARGS"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())' 2>&1 | tail -1
  local gpu="no GPU" nv="nvcc missing"
  command -v nvcc >/dev/null && nv="nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  if [ "$HAVE_GPU" = 1 ]; then
    nvidia-smi
    gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
  fi
  note "$gpu; $nv; $(nproc) cores"
}

# dpkg -x where dpkg exists, else ar + tar (binutils comes with any compiler): never into /.
unpack_one() {
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$PREFIX"
  else
    local member
    member=$(ar t "$1" | grep '^data\.tar') || return 1
    ar p "$1" "$member" | tar -x -C "$PREFIX" -f - --no-same-owner
  fi
}

step_unpack() {
  [ -d "$DEBS" ] || skip "no .debs folder at $DEBS (scripts/gather-gpu-debs.sh); using the system's packages"
  ls "$DEBS"/*.deb >/dev/null 2>&1 || skip "no .deb in $DEBS; using the system's packages"
  if [ -f "$DEBS/SHA256SUMS" ]; then (cd "$DEBS" && sha256sum --quiet -c SHA256SUMS) || exit 1; fi
  rm -rf "$PREFIX" && mkdir -p "$PREFIX" "$PREFIX/rt" || exit 1
  local n=0 f
  for f in "$DEBS"/*.deb; do
    echo "unpack $(basename "$f")"
    unpack_one "$f" || { echo "cannot unpack $f"; exit 1; }
    n=$((n + 1))
  done
  # Runtime libraries reach programs through $PREFIX/rt (on LD_LIBRARY_PATH), and only those the
  # system lacks: an older copy must not shadow the system's own for Python, PyTorch, the driver.
  local lib path linked=""
  for lib in libgfortran.so.5 libquadmath.so.0 libz.so.1 libturbojpeg.so.0; do
    path=$(find "$PREFIX/usr/lib" -name "$lib" 2>/dev/null | head -1)
    [ -n "$path" ] || continue
    if /sbin/ldconfig -p 2>/dev/null | grep -q "^\s*$lib "; then continue; fi
    ln -sf "$path" "$PREFIX/rt/$lib" && linked="$linked $lib"
  done
  echo "runtime libraries from the prefix:${linked:- none}"
  note "$n packages into $PREFIX; runtime from the prefix:${linked:- none}"
}

step_build() {
  local gen=() jobs
  jobs=$(nproc)
  command -v ninja >/dev/null && gen=(-G Ninja)
  # A build folder made by another generator cannot be reused.
  if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
  fi
  local prefix_args=()
  [ -d "$PREFIX/usr" ] && prefix_args=(-DCMAKE_PREFIX_PATH="$PREFIX/usr")
  local cudnn_args=()
  read -ra cudnn_args <<<"$CUDNN_ARGS"
  [ ${#cudnn_args[@]} -gt 0 ] && echo "cuDNN from PyTorch's package: ${cudnn_args[*]}"
  cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${prefix_args[@]}" "${cudnn_args[@]}" || exit 1
  cmake --build "$BUILD" -j "$jobs" || exit 1
  local cuda="CPU only"
  [ -f "$BUILD/libinsitu_cuda.a" ] && cuda="CUDA backend"
  local off
  off=$(grep -o 'insitu: [A-Za-z]* [a-z ]*off' "$WORK/build.log" | sed 's/insitu: //; s/ data sets\? off//; s/ off//' | tr '\n' ' ')
  note "${gen[1]:-make}, $jobs jobs, $cuda${off:+; features off: $off}"
}

step_tests() {
  [ -f "$BUILD/CTestTestfile.cmake" ] || skip "no build"
  # One test may take the step's whole time (less what ctest itself needs); the step's limit still holds.
  ctest --test-dir "$BUILD" -j "$(nproc)" --timeout $((STEP_LIMIT > 60 ? STEP_LIMIT - 20 : STEP_LIMIT)) --output-on-failure \
    --output-junit "$WORK/ctest-junit.xml"
  local rc=$?
  # Counts from the JUnit report (skipped tests are counted apart from passed ones).
  python3 - "$WORK/ctest-junit.xml" >"$WORK/tests.counts" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except Exception as e:
    print(f"no JUnit report ({e})"); sys.exit()
passed = failed = skipped = 0; names = []
for c in cases:
    st = c.get("status", "")
    if c.find("failure") is not None or c.find("error") is not None or st == "fail": failed += 1; names.append(c.get("name"))
    elif c.find("skipped") is not None or st in ("notrun", "disabled"): skipped += 1
    else: passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped" + (": " + " ".join(names[:12]) + (" ..." if len(names) > 12 else "") if names else ""))
PY
  note "$(cat "$WORK/tests.counts")"
  exit $rc
}

# The CUDA tests: every suite of tests/test_cuda_*.cc (TEST, TEST_F, TEST_P: a parameterized
# suite's tests are named Prefix/Suite.Test/N, hence the leading *).
cuda_filter() {
  grep -hoE '^TEST(_F|_P)? *\( *[A-Za-z0-9_]+' "$ROOT"/tests/test_cuda_*.cc 2>/dev/null | sed 's/.*( *//' |
    sort -u | sed 's/^/*/; s/$/.*/' | paste -sd: -
}

step_sanitizer() {
  local tool=$1
  [ "$HAVE_GPU" = 1 ] || skip "no GPU"
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
  [ -n "$cs" ] || skip "compute-sanitizer not found"
  [ -x "$BUILD/insitu_tests" ] || skip "no insitu_tests (build failed)"
  local filter
  filter=$(cuda_filter)
  [ -n "$filter" ] || skip "no tests/test_cuda_*.cc"
  "$cs" --tool "$tool" --error-exitcode 99 --print-limit 50 \
    "$BUILD/insitu_tests" --gtest_filter="$filter" --gtest_brief=1
  local rc=$?
  local summary
  summary=$(grep -E '^========= (ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY)' "$WORK/$STEP.log" | tail -1 | sed 's/^========= //')
  note "${summary:-no sanitizer summary}; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?' "$WORK/$STEP.log" | tr '\n' ' ')"
  exit $rc
}

# The GPU benchmarks and their arguments (each writes its CSVs into the folder it is given).
bench_args() {
  local dir=$2
  case "$1" in
    bench_fused_conv) echo "--out $dir${QUICK_BENCH:+ --quick}" ;;
    bench_train_step) echo "--csv $dir/bench_train_step.csv" ;;
  esac
}
GPU_BENCHES=(bench_fused_conv bench_train_step)

step_bench() {
  [ "$HAVE_GPU" = 1 ] || skip "no GPU"
  local ran=0 failed=0 b exe notes="" args
  # Each runs only if built, in a folder of its own; the CSVs it writes there come back.
  for b in "${GPU_BENCHES[@]}"; do
    exe="$BUILD/$b"
    [ -x "$exe" ] || { notes="$notes $b:not-built"; continue; }
    mkdir -p "$WORK/$b" && ran=$((ran + 1))
    read -ra args <<<"$(bench_args "$b" "$WORK/$b")"
    echo "== $b ${args[*]}"
    if (cd "$WORK/$b" && "$exe" "${args[@]}") 2>&1 | tee "$WORK/$b.out"; then
      notes="$notes $b:ok"
    else
      failed=$((failed + 1)) && notes="$notes $b:FAILED"
    fi
  done
  [ "$ran" -gt 0 ] || skip "no GPU benchmark built:$notes"
  note "${notes# }"
  [ "$failed" -eq 0 ]
}

if [ "${1:-}" = --step ]; then
  STEP=$2
  case "$STEP" in
    memcheck | racecheck | synccheck) step_sanitizer "$STEP" ;;
    *) "step_$STEP" ;;
  esac
  exit $?
fi

# ---- the driver
OUT=""
DEBS="$ROOT/.gpu-debs"
BUDGET=540
BUILD="$ROOT/build-gpucheck"
SKIP=","
SCALE=1
QUICK_BENCH=1
while [ $# -gt 0 ]; do
  case "$1" in
    --debs) DEBS=$(realpath -m "$2"); shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --skip) SKIP=",$2,"; shift 2 ;;
    --build-dir) BUILD=$(realpath -m "$2"); shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --full-bench) QUICK_BENCH=""; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$SELF"; exit 0 ;;
    -*) echo "gpu-check.sh: unknown flag $1 (--help)" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
[ -n "$OUT" ] || { echo "usage: scripts/gpu-check.sh OUT_DIR [--debs DIR] [--budget S] [--skip STEPS] (--help)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/insitu-gpu-check.XXXXXX")
PREFIX="${TMPDIR:-/tmp}/insitu-gpu-prefix"

# CUDA's tools where the toolkit's usual folder is not on PATH.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
done
# The toolkit's runtime libraries (cudart, cuBLAS; they are implicit link folders, so the
# binaries carry no RUNPATH to them) where the loader is not set up for them.
CUDA_ROOT=""
command -v nvcc >/dev/null && CUDA_ROOT=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
if [ -n "$CUDA_ROOT" ] && ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libcudart\.so\.'; then
  for d in "$CUDA_ROOT/lib64" "$CUDA_ROOT/lib" "$CUDA_ROOT"/targets/*/lib; do
    if ls "$d"/libcudart.so.* >/dev/null 2>&1; then LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"; break; fi
  done
fi
# cuDNN beside the toolkit, or else PyTorch's pip package (nvidia-cudnn-cu*): its folder is given
# to CMake (CUDNN_INC, CUDNN_LIB) and to the loader.
CUDNN_ARGS=""
if [ -n "$CUDA_ROOT" ] && ! ls "$CUDA_ROOT"/include/cudnn.h "$CUDA_ROOT"/targets/*/include/cudnn.h /usr/include/cudnn.h \
  /usr/include/x86_64-linux-gnu/cudnn.h >/dev/null 2>&1; then
  d=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
  lib=$(ls "$d"/lib/libcudnn.so "$d"/lib/libcudnn.so.[0-9]* 2>/dev/null | head -1)
  if [ -n "$d" ] && [ -f "$d/include/cudnn.h" ] && [ -n "$lib" ]; then
    CUDNN_ARGS="-DCUDNN_INC=$d/include -DCUDNN_LIB=$lib"
    LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d/lib"
  fi
fi
HAVE_GPU=0
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && HAVE_GPU=1
# The prefix reaches builds through CMAKE_PREFIX_PATH (step build), programs through these.
export LD_LIBRARY_PATH="$PREFIX/rt${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -z "${INSITU_FASHION_MNIST:-}" ] && [ -d "$PREFIX/usr/share/datasets/fashion-mnist" ] &&
  export INSITU_FASHION_MNIST="$PREFIX/usr/share/datasets/fashion-mnist"
export PATH ROOT SELF WORK PREFIX BUILD HAVE_GPU DEBS QUICK_BENCH CUDNN_ARGS LD_LIBRARY_PATH
export PYTHONUNBUFFERED=1

declare -A STATUS SECS NOTE
elapsed() { echo $(($(date +%s) - START)); }
for s in "${STEPS[@]}"; do
  if [[ "$SKIP" == *",$s,"* ]]; then
    STATUS[$s]=SKIP SECS[$s]=0 NOTE[$s]="--skip"
    echo "== $s: SKIP (--skip)"
    continue
  fi
  # The fashion-mnist folder appears only after unpack.
  [ "$s" = build ] && [ -z "${INSITU_FASHION_MNIST:-}" ] && [ -d "$PREFIX/usr/share/datasets/fashion-mnist" ] &&
    export INSITU_FASHION_MNIST="$PREFIX/usr/share/datasets/fashion-mnist"
  left=$((BUDGET - $(elapsed) - SUMMARY_RESERVE))
  limit=$(awk -v l="${LIMIT[$s]}" -v f="$SCALE" 'BEGIN { printf "%d", l * f }')
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    STATUS[$s]=SKIP SECS[$s]=0 NOTE[$s]="time budget ($BUDGET s) spent"
    echo "== $s: SKIP (time budget spent)"
    continue
  fi
  echo "== $s (limit ${limit}s) ..."
  t0=$(date +%s)
  STEP_LIMIT=$limit timeout -k "$KILL_GRACE" "$limit" "$SELF" --step "$s" >"$WORK/$s.log" 2>&1
  rc=$?
  SECS[$s]=$(($(date +%s) - t0))
  NOTE[$s]=$(head -1 "$WORK/$s.note" 2>/dev/null)
  # A tests step stopped at its limit wrote no report: count what its log shows so far.
  if [ "$s" = tests ] && [ -z "${NOTE[$s]}" ] && [ -f "$WORK/tests.log" ]; then
    NOTE[$s]="so far: $(grep -c 'Test *#.* Passed' "$WORK/tests.log") passed, $(grep -cE 'Test *#.*\*\*\*(Failed|Timeout)' "$WORK/tests.log") failed, $(grep -c 'Test *#.*\*\*\*Skipped' "$WORK/tests.log") skipped"
  fi
  case $rc in
    0) STATUS[$s]=PASS ;;
    77) STATUS[$s]=SKIP ;;
    124 | 137) STATUS[$s]=FAIL NOTE[$s]="timed out after ${limit}s${NOTE[$s]:+; ${NOTE[$s]}}" ;;
    *) STATUS[$s]=FAIL NOTE[$s]="exit $rc${NOTE[$s]:+; ${NOTE[$s]}}" ;;
  esac
  echo "== $s: ${STATUS[$s]} (${SECS[$s]}s) ${NOTE[$s]}"
  # A failing step shows its last lines here too (the full log is in logs.tar.gz).
  [ "${STATUS[$s]}" = FAIL ] && tail -n 15 "$WORK/$s.log" | sed 's/^/   | /'
done

# ---- results: the benchmarks' CSVs, the logs bundled, the summary last
# At most 8 files come back from a device call: 3 of ours, then up to 5 CSVs (all are in the tar).
ncsv=0
for b in "${GPU_BENCHES[@]}"; do
  for f in "$WORK/$b"/*.csv; do
    [ -f "$f" ] && [ "$ncsv" -lt 5 ] && cp "$f" "$OUT/$(basename "$f")" && ncsv=$((ncsv + 1))
  done
done
{
  echo "step,status,seconds,note"
  for s in "${STEPS[@]}"; do printf '%s,%s,%s,"%s"\n' "$s" "${STATUS[$s]}" "${SECS[$s]}" "${NOTE[$s]//\"/\'}"; done
} >"$OUT/steps.csv"
tar -czf "$OUT/logs.tar.gz" -C "$WORK" . 2>/dev/null

# The benchmarks' tables, then the summary: the end of the output is what a device call returns.
for b in "${GPU_BENCHES[@]}"; do
  [ -f "$WORK/$b.out" ] && { echo; echo "== $b"; tail -n 40 "$WORK/$b.out"; }
done
fails=0
for s in "${STEPS[@]}"; do [ "${STATUS[$s]}" = FAIL ] && fails=$((fails + 1)); done
{
  echo
  echo "== insitu GPU check, $(date -u +%FT%TZ), $(elapsed)s of a ${BUDGET}s budget"
  printf '%-10s %-5s %6s  %s\n' step state secs note
  for s in "${STEPS[@]}"; do
    printf '%-10s %-5s %6s  %s\n' "$s" "${STATUS[$s]}" "${SECS[$s]}" "${NOTE[$s]}"
  done
  echo "logs: $OUT/logs.tar.gz (one log per step); CSVs: $(cd "$OUT" && find . -maxdepth 1 -name '*.csv' -printf '%f ')"
  echo "RESULT: $fails step(s) failed"
} | tee "$OUT/summary.txt"
rm -rf "$WORK"
[ "$fails" -eq 0 ]
