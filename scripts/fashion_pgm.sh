#!/usr/bin/env bash
# Writes the first N Fashion-MNIST test images as binary PGM files OUT/0.pgm ..
# (28x28, gray), straight from Debian's gzip IDX file: test inputs for the
# consumers of the installed library (check_install.sh, check_arm64.sh).
# Usage: scripts/fashion_pgm.sh OUT N     (LENET_DATA_DIR overrides the data folder)
set -euo pipefail
out=${1:?usage: $0 OUT N}
n=${2:?usage: $0 OUT N}
data=${LENET_DATA_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
# The IDX images file: a 16-byte header, then 28x28 bytes per image.
gzip -dc "$data/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)) >"$raw"
for ((i = 0; i < n; ++i)); do
  { printf 'P5\n28 28\n255\n'; tail -c +$((i * 784 + 1)) "$raw" | head -c 784; } >"$out/$i.pgm"
done
