#!/usr/bin/env bash
# ARM64: builds the inference core and the C API with Debian's cross compiler
# (cmake/aarch64-linux-gnu.cmake, LENET_CORE_ONLY) into build-arm64/, runs its
# tests under qemu-aarch64 (CTest core.all: kernels vs the reference, engine vs
# the modules, gradients, tensors, the C API), then classifies 12 Fashion-MNIST
# test images with examples/embed/classify.c built for arm64 (liblenet.so under
# qemu) and for x86-64 (X86_BUILD's liblenet.so) from one model the x86-64 CLI
# trained: the same classes, and probabilities within 1e-5 (the arm64
# "generic" path sums in 4 lanes without fused multiply-adds, the x86-64
# AVX-512 one in 16 with them; against x86-64's 4-lane baseline path it is
# compared too and reported).
# Usage: scripts/check_arm64.sh [X86_BUILD]     (default: build, with lenet and liblenet.so built)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
x86="$(cd "${1:-$root/build}" && pwd)"
arm="$root/build-arm64"
mkdir -p "$arm"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$arm" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release \
  "${launcher[@]}" >"$arm/check-configure.log"
cmake --build "$arm" -j"$(nproc)" --target lenet lenet_shared lenet_core_tests >"$arm/check-build.log" ||
  { tail -30 "$arm/check-build.log" >&2; exit 1; }
ctest --test-dir "$arm" --output-on-failure

work="$arm/classify-check"
rm -rf "$work" && mkdir -p "$work"
for target in arm x86; do
  if [[ $target == arm ]]; then cc=aarch64-linux-gnu-gcc lib="$arm"; else cc=cc lib="$x86"; fi
  "$cc" -std=c99 -Wall -Werror -I"$root/include" -I"$lib/include" "$root/examples/embed/classify.c" \
    -L"$lib" -llenet -Wl,-rpath,"$lib" -o "$work/classify-$target"
done
grep -q aarch64 <<<"$(file "$work/classify-arm")" || { echo "check_arm64: classify-arm is not an aarch64 binary" >&2; exit 1; }
"$x86/lenet" train --arch lenet-relu --epochs 1 --limit-train 2000 --limit-test 200 --seed 1 --threads 2 \
  --out "$work/run" >"$work/train.log"
bash "$root/scripts/fashion_pgm.sh" "$work/images" 12
images=("$work"/images/{0..11}.pgm)
model="$work/run/best.safetensors"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/classify-arm" "$model" "${images[@]}" >"$work/arm.jsonl"
"$work/classify-x86" "$model" "${images[@]}" >"$work/x86.jsonl"
LENET_ISA=baseline "$work/classify-x86" "$model" "${images[@]}" >"$work/x86-baseline.jsonl"
tokens() { grep -o '"\(index\|label\)":"\?[^,"]*\|"probability":[-0-9.e+]*' "$1"; }
# Prints the largest probability difference; fails on another class or a difference above $3.
compare() {
  paste <(tokens "$1") <(tokens "$2") | awk -F'\t' -v tol="$3" '
    { n++
      if ($1 ~ /^"probability"/) { d = substr($1, 15) - substr($2, 15); if (d < 0) d = -d; if (d > worst) worst = d }
      else if ($1 != $2) { print "different class: " $1 " vs " $2; bad = 1 } }
    END { if (n != 12 * 12) { print n " tokens, expected " 12 * 12; bad = 1 }
          printf "largest probability difference %.3g\n", worst; if (worst > tol) bad = 1; exit bad }'
}
for ref in x86 x86-baseline; do
  result=$(compare "$work/$ref.jsonl" "$work/arm.jsonl" 1e-5) ||
    { echo "check_arm64: arm64 vs $ref: $result" >&2; exit 1; }
  echo "check_arm64: arm64 vs $ref ($([[ $ref == x86 ]] && "$x86/lenet" --version | tail -1 || echo "LENET_ISA=baseline")): $result"
done
echo "check_arm64: ok (core tests under qemu-aarch64; classify.c on arm64 agrees with x86-64 on 12 images)"
