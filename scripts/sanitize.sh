#!/usr/bin/env bash
# Builds the library, the CLI and the test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (LENET_SANITIZE, in build-asan/) and runs the
# whole suite under them: any memory error, leak or undefined behaviour fails
# the test it happens in.
#
#   bash scripts/sanitize.sh                # build and run every test
#   bash scripts/sanitize.sh -R Resume      # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

# -O1 and line tables only (-g1), as OSS-Fuzz builds: GCC's ASan at -O2 -g took
# 3.4x the release build's compile time (60 s vs 18 s for tests/test_onnx.cpp),
# -O1 -g1 half of that, and reports still name file and line. The test
# sources themselves are built at -Og (tests/CMakeLists.txt): their speed does
# not matter, the library's does.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DLENET_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

# Leaks are errors; a report names its stack. Third-party libraries' own
# one-time allocations are listed in scripts/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@"
