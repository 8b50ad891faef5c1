#!/usr/bin/env bash
# Installs the benchmark peers: PyTorch (python3-torch), LibTorch (libtorch-dev)
# and ONNX Runtime (npm onnxruntime-node, pinned by bench/onnxruntime/package-lock.json),
# and OpenBLAS (libopenblas-dev) for the sgemm peak of bench/bench_model.cpp.
# Only bench/compare.py needs them; the build, the tests and CI do not.
# Run after scripts/setup.sh:   bash bench/setup-peers.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

packages=(python3-torch libtorch-dev python3-numpy time libopenblas-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cd "$here/onnxruntime"
# The CPU build ships in the npm tarball; skip the install script's download of
# the CUDA provider from NuGet (a CPU benchmark does not need it).
export ONNXRUNTIME_NODE_INSTALL=skip
if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
