#!/usr/bin/env bash
# Checks an installed lenet.cpp from outside the source tree, as a user gets it:
#   scripts/check_install.sh BUILD_DIR WORK_DIR        cmake --install BUILD_DIR into WORK_DIR/prefix
#   scripts/check_install.sh --system WORK_DIR         what the .deb packages put under /usr
# Then: the installed files (headers, liblenet.so with its SONAME and only
# lenet_* / lenet:: symbols exported, liblenet.a, CMake package, lenet.pc, the
# CLI); the installed CLI trains a small model on Fashion-MNIST; the consumers
# of examples/embed are built against the prefix with CMake (find_package:
# classify.c shared and static, classify.cpp) and with plain
# `cc $(pkg-config --cflags --libs lenet)`; each classifies 12 test images and
# must print the numbers `lenet predict --json --top-k 3` prints for each file
# (compared to 1e-8 relative: the consumers print 9 significant digits, which
# tell any two floats apart).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ${1:-} == --system ]]; then
  prefix=/usr
  work=${2:?usage: $0 --system WORK_DIR}
  mkdir -p "$work"
else
  build=${1:?usage: $0 BUILD_DIR WORK_DIR | --system WORK_DIR}
  work=${2:?usage: $0 BUILD_DIR WORK_DIR}
  rm -rf "$work"
  mkdir -p "$work"
  prefix="$work/prefix"
  cmake --install "$build" --prefix "$prefix" >"$work/install.log"
  export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  export CMAKE_PREFIX_PATH="$prefix"
fi
work="$(cd "$work" && pwd)"
fail() { echo "check_install: $*" >&2; exit 1; }

# ---- the installed files ----
pc=$(pkg-config --variable=pcfiledir lenet 2>/dev/null) || fail "pkg-config finds no lenet.pc"
libdir=$(pkg-config --variable=libdir lenet)
includedir=$(pkg-config --variable=includedir lenet)
[[ $(realpath "$pc") == $(realpath "$libdir/pkgconfig") ]] || fail "lenet.pc in $pc, not in its libdir $libdir/pkgconfig"
for f in "$includedir/lenet/c_api.h" "$includedir/lenet/lenet.h" "$includedir/lenet/version.h" \
  "$libdir/liblenet.a" "$libdir/liblenet.so" "$libdir/cmake/lenet/lenetConfig.cmake" \
  "$libdir/cmake/lenet/lenetConfigVersion.cmake" "$prefix/bin/lenet"; do
  [[ -e $f ]] || fail "$f was not installed"
done
version=$(pkg-config --modversion lenet)
grep -q "LENET_VERSION_STRING \"$version\"" "$includedir/lenet/version.h" || fail "version.h does not say $version"
grep -qx "lenet.cpp $version" <<<"$("$prefix/bin/lenet" --version)" || fail "lenet --version does not say $version"
soname=$(readelf -d "$libdir/liblenet.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "liblenet.so.${version%%.*}" ]] || fail "SONAME is '$soname', not liblenet.so.${version%%.*}"
[[ -e "$libdir/$soname" ]] || fail "$libdir/$soname missing"
# Every exported (defined, dynamic) symbol is lenet_* or in namespace lenet.
others=$(nm -D --defined-only -C "$libdir/liblenet.so" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
  grep -Ev '^(lenet_[a-z0-9_]+|lenet::.*|(typeinfo|typeinfo name|vtable|VTT) for lenet::.*)$' || true)
[[ -z $others ]] || fail "liblenet.so exports symbols outside lenet_* and lenet::: $(echo "$others" | head -5)"
grep -q ' T lenet_predict_u8$' <<<"$(nm -D --defined-only "$libdir/liblenet.so")" || fail "lenet_predict_u8 not exported"

# ---- a model trained by the installed CLI, and 12 Fashion-MNIST test images as PGM files ----
data=${LENET_DATA_DIR:-/usr/share/datasets/fashion-mnist}
"$prefix/bin/lenet" train --data "$data" --arch lenet-relu --epochs 1 --limit-train 2000 --limit-test 200 \
  --seed 1 --threads 2 --out "$work/run" >"$work/train.log"
model="$work/run/best.safetensors"
[[ -f $model ]] || fail "training wrote no $model"
bash "$src/scripts/fashion_pgm.sh" "$work/images" 12
images=()
for i in $(seq 0 11); do images+=("$work/images/$i.pgm"); done

# ---- the consumers ----
cmake -S "$src/examples/embed" -B "$work/embed" -DCMAKE_BUILD_TYPE=Release >"$work/embed.log"
cmake --build "$work/embed" >>"$work/embed.log"
# shellcheck disable=SC2046  # pkg-config's output is meant to be split
cc -std=c99 -Wall -Werror "$src/examples/embed/classify.c" $(pkg-config --cflags --libs lenet) -o "$work/classify_pc"
grep -q "liblenet.so.${version%%.*}" <<<"$(ldd "$work/classify_pc")" || fail "classify_pc is not linked to liblenet.so"
grep -q liblenet <<<"$(ldd "$work/embed/classify_static")" && fail "classify_static is linked to liblenet.so"

# `lenet predict` one file per run (one image per forward pass, as the consumers call it).
: >"$work/expected.jsonl"
for f in "${images[@]}"; do
  "$prefix/bin/lenet" predict --json --top-k 3 --model "$model" "$f" >>"$work/expected.jsonl"
done
# The (index, label, probability) tokens of each line, in order.
tokens() { grep -o '"\(file\|index\|label\)":"\?[^,"]*\|"probability":[-0-9.e+]*' "$1"; }
for exe in "$work/embed/classify" "$work/embed/classify_static" "$work/embed/classify_cpp" "$work/classify_pc"; do
  "$exe" "$model" "${images[@]}" >"$work/out.jsonl" || fail "$exe failed"
  paste <(tokens "$work/expected.jsonl") <(tokens "$work/out.jsonl") | awk -F'\t' -v exe="$exe" '
    { n++
      if ($1 ~ /^"probability"/ && $2 ~ /^"probability"/) {
        a = substr($1, 15) + 0; b = substr($2, 15) + 0; d = a - b; if (d < 0) d = -d
        if (d > 1e-8 * (a < 0 ? -a : a)) { print exe ": " $1 " vs " $2; bad = 1 }
      } else if ($1 != $2) { print exe ": " $1 " vs " $2; bad = 1 }
    }
    END { if (n != 12 * 13) { print exe ": " n " tokens, expected " 12 * 13; bad = 1 }; exit bad }' ||
    fail "$exe does not print what lenet predict prints"
done
# README's ten lines: the label lenet predict gives the first image, and its probability to 3 decimals.
cc -std=c99 "$src/examples/embed/ten_lines.c" $(pkg-config --cflags --libs lenet) -o "$work/ten_lines"
first=$(head -1 "$work/expected.jsonl")
label=$(grep -o '"label":"[^"]*' <<<"$first" | head -1 | cut -d'"' -f4)
probability=$(grep -o '"probability":[0-9.e-]*' <<<"$first" | head -1 | cut -d: -f2)
want="$label $(printf '%.3f' "$probability")"
got=$("$work/ten_lines" "$model" "${images[0]}")
[[ $got == "$want" ]] || fail "ten_lines.c printed '$got', lenet predict says '$want'"
echo "check_install: ok ($prefix: lenet $version, SONAME $soname; 4 consumers agree with lenet predict on 12 images)"
