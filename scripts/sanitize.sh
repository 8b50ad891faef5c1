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

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLENET_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

# Leaks are errors; a report names its stack. Third-party libraries' own
# one-time allocations are listed in scripts/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@"
