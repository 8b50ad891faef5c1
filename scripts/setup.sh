#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the main job need.
# Idempotent: re-running it only checks that everything is present.
set -euo pipefail

packages=(
  cmake g++ make pkg-config git                 # toolchain
  libgtest-dev libgmock-dev libbenchmark-dev    # tests, micro-benchmarks
  libcli11-dev                                  # command line
  zlib1g-dev                                    # gzip IDX files
  libstb-dev                                    # image codecs
  nlohmann-json3-dev                            # safetensors header, JSON specs
  libonnx-dev libprotobuf-dev protobuf-compiler # ONNX export/import
  libplplot-dev plplot-driver-cairo             # training curves
  libopenblas-dev                               # sgemm
  dataset-fashion-mnist                         # the default data set
  qemu-user                                     # tests: the portable build on older CPUs (qemu-x86_64 -cpu Haswell/Nehalem)
  clang libclang-rt-14-dev libomp-dev           # fuzzing (libFuzzer, sanitizers' runtimes, OpenMP for clang)
)

# Node.js and npm drive ONNX Runtime in the tests; a machine that already has a
# node (e.g. from NodeSource, which bundles npm) keeps it.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for the tests (tests/onnxruntime), pinned by its package-lock.json
# and installed only from the npm registry. Its install script would fetch
# optional CUDA files from GitHub: ONNXRUNTIME_NODE_INSTALL_CUDA=skip turns that
# off, and --ignore-scripts runs no install script at all (the CPU binaries ship
# inside the npm package). Re-installed only when the lock file changes.
ort_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/onnxruntime"
ort_stamp="$ort_dir/node_modules/.lenet-lock.sha256"
ort_lock_sum=$(sha256sum "$ort_dir/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$ort_stamp" || $(cat "$ort_stamp") != "$ort_lock_sum" ]] ||
   ! (cd "$ort_dir" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); then
  (cd "$ort_dir" && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$ort_lock_sum" >"$ort_stamp"
fi
