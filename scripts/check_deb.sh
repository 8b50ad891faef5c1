#!/usr/bin/env bash
# The Debian packages end to end: cpack -G DEB in BUILD_DIR (liblenet0: the
# shared library and the CLI; liblenet-dev: headers, liblenet.a, CMake and
# pkg-config files), `apt-get install ./…deb`, then scripts/check_install.sh
# --system (consumers built against /usr and checked against lenet predict),
# then the packages are removed again.
# Usage: scripts/check_deb.sh [BUILD_DIR]     (default: build; needs root or sudo)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
rm -f "$build"/liblenet*.deb
(cd "$build" && cpack -G DEB >"$build/cpack.log") || { cat "$build/cpack.log" >&2; exit 1; }
runtime=$(ls "$build"/liblenet[0-9]*_*.deb)
dev=$(ls "$build"/liblenet-dev_*.deb)
for deb in "$runtime" "$dev"; do
  echo "check_deb: $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
done
# Correct dependencies: the runtime package names the shared libraries it links.
for lib in libonnx1 libprotobuf32 libplplot17 libc6 libstdc++6; do
  grep -q "$lib" <<<"$(dpkg-deb -f "$runtime" Depends)" || { echo "check_deb: $runtime does not depend on $lib" >&2; exit 1; }
done
contents=$(dpkg-deb -c "$runtime")
grep -q '/usr/bin/lenet$' <<<"$contents" || { echo "check_deb: no /usr/bin/lenet in $runtime" >&2; exit 1; }
cleanup() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -q liblenet-dev "$(dpkg-deb -f "$runtime" Package)" >/dev/null; }
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$runtime" "$dev" >"$build/apt.log"
bash "$root/scripts/check_install.sh" --system "$build/deb-check"
