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
