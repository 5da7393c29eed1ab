#!/usr/bin/env bash
# The compact-model commands of docker/README.md, end to end on synthetic CIFAR-10-format data
# (64 training and 64 test images of random pixels): teacher, ℓ2 init, distillation at
# 5-40-4-4-4 with 8-bit activations, evaluation and report. Shows the commands work on a CPU;
# the accuracies mean nothing (the full runs are for GPUs).
#   docs/compact_smoke.sh [path/to/insitu] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/insitu}
out=${2:-runs/compact_smoke}
data=$out/cifar
mkdir -p "$data"
python3 - "$data" <<'PY'
import random, sys
r = random.Random(5)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        for _ in range(64):
            f.write(bytes([r.randrange(10)]) + bytes(r.randrange(256) for _ in range(3072)))
PY
for m in mobilenetv3-small-cifar efficientnet-b0-cifar mobilenetv2-cifar; do
  "$bin" run --dataset cifar10 --data "$data" --model $m --setting 5-40-4-4-4 --act-bits 8 \
     --train-limit 64 --test-limit 64 --teacher-epochs 1 --epochs 1 --l2-iters 10 --batch 16 --log-every 0 \
     --threads 2 --bn-recalib 0 --out "$out/$m" | grep -E "RESULT|activation memory"
done
