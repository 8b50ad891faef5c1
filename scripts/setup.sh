#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the main job need.
# Idempotent: re-running it only checks that everything is present.
set -euo pipefail

packages=(
  cmake g++ make pkg-config git                 # toolchain
  libgtest-dev libgmock-dev libbenchmark-dev    # tests, micro-benchmarks
  libcli11-dev                                  # command line
  zlib1g-dev                                    # gzip IDX files
  libpng-dev libjpeg62-turbo-dev                # PNG and JPEG decoding (libpng, libjpeg-turbo)
  libstb-dev                                    # BMP/PGM decoding, image writing
  nlohmann-json3-dev                            # safetensors header, JSON specs
  libonnx-dev libprotobuf-dev protobuf-compiler # ONNX export/import
  libplplot-dev plplot-driver-cairo             # training curves
  dataset-fashion-mnist                         # the default data set
  qemu-user                                     # tests: the portable build on older CPUs (qemu-x86_64 -cpu Haswell/Nehalem)
  clang libclang-rt-14-dev                      # fuzzing (libFuzzer, sanitizers' runtimes)
  clang-format clang-tidy                       # scripts/lint.sh
  chromium                                      # browser tests of lenet export --web (headless)
  dpkg-dev                                      # cpack -G DEB: dpkg-shlibdeps finds the .deb's dependencies
  g++-aarch64-linux-gnu                         # the ARM64 build of the core (cmake/aarch64-linux-gnu.cmake)
  libopenmpi-dev openmpi-bin                    # data-parallel training over MPI (LENET_MPI; mpirun in the tests)
)

# Node.js and npm drive ONNX Runtime in the tests; a machine that already has a
# node (e.g. from NodeSource, which bundles npm) keeps it.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages, each pinned by its folder's package-lock.json and installed
# only from the npm registry; a folder is re-installed only when its lock file
# changes or its package cannot be found. --ignore-scripts runs no install
# script: onnxruntime-node's would fetch optional CUDA files from GitHub
# (ONNXRUNTIME_NODE_INSTALL_CUDA=skip turns that off too; its CPU binaries ship
# inside the package), and none of the others needs one.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_install() {  # FOLDER CHECK: CHECK is a node expression that throws when the package is missing
  local dir="$root/$1" stamp="$root/$1/node_modules/.lenet-lock.sha256" sum
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f "$stamp" || $(cat "$stamp") != "$sum" ]] || ! (cd "$dir" && node -e "$2" >/dev/null 2>&1); then
    (cd "$dir" && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}
npm_install tests/onnxruntime "require('onnxruntime-node')"         # ONNX Runtime for the tests
npm_install web "require('fs').accessSync('node_modules/onnxruntime-web/dist/ort.wasm.min.js')"  # lenet export --web copies it
npm_install tests/browser "require('puppeteer-core')"               # drives chromium in tests/test_web.cpp
