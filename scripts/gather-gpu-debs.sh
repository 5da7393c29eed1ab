#!/usr/bin/env bash
# Gathers, on a connected Debian 12 (bookworm) x86-64 machine, the Debian packages that building and
# testing insitu needs beyond the CUDA toolkit, a C/C++ compiler, CMake and Python, into one folder
# (default .gpu-debs/, git-ignored) that travels to an air-gapped GPU node beside the tree, where
# scripts/gpu-check.sh unpacks them into a private prefix. See docs/GPU-CHECK.md.
#
#   scripts/gather-gpu-debs.sh [DIR] [--no-dataset]
#
# --no-dataset leaves out FashionMNIST (31 MB of the ~44 MB): the tests that train on it then skip.
# SVHN (libmatio pulls HDF5) and MPI (OpenMPI) stay out: those optional features build off there.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=.gpu-debs
dataset=1
for a in "$@"; do
  case "$a" in
    --no-dataset) dataset=0 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "gather-gpu-debs.sh: unknown flag $a" >&2; exit 2 ;;
    *) dir=$a ;;
  esac
done

# Exactly what the build and tests link or read; apt-get download takes no dependencies, so each
# runtime library the target may lack is named.
pkgs=(
  libopenblas-openmp-dev  # cblas.h and libopenblas.so (the OpenMP build)
  libopenblas0-openmp     # libopenblas.so.0
  libgfortran5            # OpenBLAS's runtime needs (a GPU node's image may lack them)
  libquadmath0
  libgtest-dev            # GoogleTest: headers, static libraries, CMake package
  zlib1g-dev              # zlib.h, libz.so (FashionMNIST's .gz files)
  zlib1g
  libturbojpeg0-dev       # JPEG data sets (the optional feature INSITU_JPEG)
  libturbojpeg0
)
[ "$dataset" = 1 ] && pkgs+=(dataset-fashion-mnist)

if ! command -v apt-get >/dev/null || ! grep -q 'bookworm' /etc/os-release 2>/dev/null; then
  echo "gather-gpu-debs.sh: needs a Debian 12 (bookworm) machine with apt-get (the .debs must match it)" >&2
  exit 1
fi
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "gather-gpu-debs.sh: needs an amd64 machine" >&2; exit 1; }

mkdir -p "$dir"
rm -f "$dir"/*.deb
# Lists may be stale or missing (a fresh container): refresh them when a download fails.
if ! (cd "$dir" && apt-get -o APT::Sandbox::User=root download "${pkgs[@]}" >/dev/null); then
  apt-get update -qq || { echo "gather-gpu-debs.sh: apt-get update failed (needs root and a mirror)" >&2; exit 1; }
  (cd "$dir" && apt-get -o APT::Sandbox::User=root download "${pkgs[@]}" >/dev/null)
fi
(cd "$dir" && sha256sum ./*.deb >SHA256SUMS)
n=$(ls "$dir"/*.deb | wc -l)
[ "$n" -eq "${#pkgs[@]}" ] || { echo "gather-gpu-debs.sh: got $n of ${#pkgs[@]} packages in $dir" >&2; exit 1; }
echo "gather-gpu-debs.sh: $n packages, $(du -sh "$dir" | cut -f1), in $dir"
