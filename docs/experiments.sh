#!/usr/bin/env bash
# Reproduces the measurements in docs/RESULTS.md (run from the repository root after a build).
#   docs/experiments.sh teacher  OUT                 # the dense teacher (18 epochs, lr ×0.85/epoch)
#   docs/experiments.sh student  OUT EPOCHS SETTING  # ℓ2 init + quantized KD student
#   docs/experiments.sh table    OUT EPOCHS          # (Bi, Bc) grid, quantization off and on
#   docs/experiments.sh ablation OUT EPOCHS SETTING  # the paper's Table 1 rows
# Each student run appends "name<TAB>accuracy<TAB>parameter ratio<TAB>memory ratio" to OUT/results.tsv.
set -euo pipefail
bin=${INSITU:-build/insitu}
what=$1 out=$2
mkdir -p "$out"
teacher=$out/teacher/teacher.safetensors
decay=${DECAY:-0.85}

# student NAME EPOCHS FLAGS...: init then distill in OUT/NAME, one result line.
student() {
  local name=$1 epochs=$2
  shift 2
  local dir=$out/$name
  mkdir -p "$dir"
  "$bin" init --out "$dir" --teacher "$teacher" "$@" > "$dir/init.log"
  "$bin" distill --out "$dir" --teacher "$teacher" --epochs "$epochs" --lr-decay "$decay" --log-every 0 "$@" \
    > "$dir/distill.log"
  local acc ratios
  acc=$(sed -nE 's/^student: test accuracy ([0-9.]+)%.*/\1/p' "$dir/distill.log")
  ratios=$(sed -nE 's/^whole model: parameter ratio ([0-9.]+), memory ratio ([0-9.]+).*/\1\t\2/p' "$dir/distill.log")
  printf '%s\t%s\t%s\n' "$name" "$acc" "$ratios" | tee -a "$out/results.tsv"
}

case $what in
teacher)
  "$bin" teacher --out "$out/teacher" --teacher-epochs 18 --lr-decay 0.85 --log-every 0 | tee "$out/teacher.log"
  ;;
student)
  student "student-$4" "$3" --setting "$4"
  ;;
table)
  for bb in 1-8 1-16 2-4 2-8 2-16 2-24 4-8 4-16; do
    student "fp-$bb" "$3" --setting "$bb-32-32-32"
    student "q4-$bb" "$3" --setting "$bb-4-4-4"
  done
  ;;
ablation)
  s=$4 e=$3
  student "abl-random-$s" "$e" --setting "$s" --init random --lambda-ort 0 --no-kd
  student "abl-svd-$s" "$e" --setting "$s" --init svd --lambda-ort 0 --no-kd
  student "abl-l2-$s" "$e" --setting "$s" --init l2 --lambda-ort 0 --no-kd
  student "abl-l2-ort-$s" "$e" --setting "$s" --init l2 --no-kd
  student "abl-l2-ort-kd-$s" "$e" --setting "$s" --init l2
  ;;
*)
  echo "experiments.sh: unknown part '$what' (teacher, student, table, ablation)" >&2
  exit 2
  ;;
esac
