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
# (head stops reading early: gzip's broken pipe is expected.)
(set +o pipefail; gzip -dc "$data/t10k-images-idx3-ubyte.gz" | head -c $((16 + n * 784)) >"$raw")
[[ $(stat -c %s "$raw") -eq $((16 + n * 784)) ]] || { echo "fashion_pgm: $data has fewer than $n test images" >&2; exit 1; }
for ((i = 0; i < n; ++i)); do
  { printf 'P5\n28 28\n255\n'; dd if="$raw" bs=1 skip=$((16 + i * 784)) count=784 status=none; } >"$out/$i.pgm"
done
