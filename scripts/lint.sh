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
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LINT_BUILD_DIR:-build}
jobs=${LINT_JOBS:-$(nproc)}
status=0

if [[ ${LINT_FORMAT:-1} != 0 ]]; then
  start=$SECONDS
  if git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format-14 --dry-run --Werror; then
    echo "lint: clang-format: clean ($((SECONDS - start)) s)"
  else
    echo "lint: clang-format: files differ from .clang-format (clang-format-14 -i FILE fixes them)"
    status=1
  fi
fi

if [[ ${LINT_TIDY:-1} != 0 ]]; then
  start=$SECONDS
  [[ -f $build/compile_commands.json ]] || cmake -S . -B "$build" >/dev/null
  root=$(pwd)
  if run-clang-tidy-14 -p "$build" -j "$jobs" -quiet \
      -extra-arg=-Wno-unknown-warning-option -extra-arg=-include -extra-arg="$root/fuzz/gcc_builtins.h" \
      "^$root/(src|apps)/" >"$build/clang-tidy.log" 2>&1; then
    echo "lint: clang-tidy: clean ($((SECONDS - start)) s)"
  else
    grep -E "(warning|error):" "$build/clang-tidy.log" | sort -u || tail -n 40 "$build/clang-tidy.log"
    echo "lint: clang-tidy: findings above (whole log: $build/clang-tidy.log)"
    status=1
  fi
fi
exit $status
