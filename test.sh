#!/usr/bin/env bash
# Installs, builds and runs every test: the Release build (the CUDA backend built with nvcc, its
# kernels tested on the CPU execution check), then the tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the libFuzzer harnesses (clang, ASan + UBSan):
# every committed regression input replayed and a short fuzzing run of each (tests/fuzz/run.sh).
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
# nvcc-compiled code is not instrumented, so the sanitizer build leaves the real CUDA backend out;
# the CUDA kernels still run under the sanitizers through the CPU execution check (insitu_emu_tests).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINSITU_SANITIZE=ON -DINSITU_CUDA=OFF > /dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"
FUZZ_JOBS=$jobs tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
