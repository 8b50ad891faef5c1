#!/usr/bin/env bash
# Lint: clang-format 14 (the style in .clang-format) over every tracked C/C++
# file, then clang-tidy 14 (the checks in .clang-tidy) over the library and the
# CLI (src/, apps/) through build/compile_commands.json. Any finding fails.
#
#   bash scripts/lint.sh                 # both
#   LINT_FORMAT=0 bash scripts/lint.sh   # clang-tidy only
#   LINT_TIDY=0 bash scripts/lint.sh     # clang-format only
#   LINT_BUILD_DIR=other LINT_JOBS=4 ... # another configured build folder, more jobs
#
# clang-tidy parses each file as clang does; the build is GCC's, so GCC-only
# warning flags are let through, and GCC's __builtin_shuffle (the kernels'
# SIMD layer) comes from the fuzz build's stand-in (fuzz/gcc_builtins.h).
# src/io/stb_image_impl.cpp (stb's own implementation, compiled alone) is not ours to lint.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LINT_BUILD_DIR:-build}
jobs=${LINT_JOBS:-$(nproc)}
status=0

if [[ ${LINT_FORMAT:-1} != 0 ]]; then
  start=$SECONDS
  mkdir -p "$build"
  if git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format-14 --dry-run --Werror >"$build/clang-format.log" 2>&1; then
    echo "lint: clang-format: clean ($((SECONDS - start)) s)"
  else
    grep -o '^[^:]*\.\(cpp\|h\):' "$build/clang-format.log" | sort | uniq -c | sed 's/:$//'
    echo "lint: clang-format: the files above differ from .clang-format (findings per file; clang-format-14 -i FILE" \
      "fixes them; whole log: $build/clang-format.log)"
    status=1
  fi
fi

if [[ ${LINT_TIDY:-1} != 0 ]]; then
  start=$SECONDS
  [[ -f $build/compile_commands.json ]] || cmake -S . -B "$build" >/dev/null
  root=$(pwd)
  if run-clang-tidy-14 -p "$build" -j "$jobs" -quiet \
      -extra-arg=-Wno-unknown-warning-option -extra-arg=-include -extra-arg="$root/fuzz/gcc_builtins.h" \
      "^$root/(src|apps)/(?!io/stb_image_impl\.cpp)" >"$build/clang-tidy.log" 2>&1; then
    echo "lint: clang-tidy: clean ($((SECONDS - start)) s)"
  else
    sed 's/\x1b\[[0-9;]*m//g' "$build/clang-tidy.log" | grep -E "(warning|error):" | sort -u ||
      tail -n 40 "$build/clang-tidy.log"
    echo "lint: clang-tidy: findings above (whole log: $build/clang-tidy.log)"
    status=1
  fi
fi
exit $status
