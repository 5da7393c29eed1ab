#!/usr/bin/env bash
# The main job: install, build, then teacher → ℓ2 init → quantized KD student on FashionMNIST.
# Extra flags go to `insitu run` (e.g. --schedule full, --setting 2-8-4-4-4, --out DIR).
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" > /dev/null
exec ./build/insitu run "$@"
