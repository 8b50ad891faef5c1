#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-fuzz/), replays every input that once
# crashed (fuzz/regressions/<target>/), then fuzzes each target for a bounded
# time from its seed corpus (fuzz/corpus/<target>/). Fails on any crash, leak,
# sanitizer report, timeout or allocation over the limits.
#
#   bash scripts/fuzz.sh                    # 60 s per target, every target
#   bash scripts/fuzz.sh 20                 # 20 s per target (or FUZZ_SECONDS=20)
#   bash scripts/fuzz.sh 300 image idx      # chosen targets
#   FUZZ_SEED=1 FUZZ_RUNS=200000 bash scripts/fuzz.sh 120   # what CI runs (below)
#   bash scripts/fuzz.sh merge [targets]    # keep what raised coverage (below)
#
# CI gates on a reproducible run: a fixed seed and a fixed number of inputs per
# target (FUZZ_RUNS), the time only as a cap, so the same commit tries the same
# inputs every time and a red CI means a change, not a lucky draw. Exploring
# further is for longer runs with a random seed (the default).
#
# A finding is saved under build-fuzz/artifacts/<target>/; reproduce it with
# build-fuzz/fuzz/fuzz_<target> FILE, fix the parser, and keep the file in
# fuzz/regressions/<target>/ so that it is replayed here and by the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# merge: the inputs that fuzzing found (build-fuzz/corpus/<target>/) and that
# add coverage to the committed corpus, minimised with libFuzzer's -merge=1,
# become fuzz/corpus/<target>/grown/, so that the next run, CI's included,
# starts from them. The seeds themselves stay where they are.
if [[ ${1:-} == merge ]]; then
  shift
  if [[ $# -gt 0 ]]; then targets=("$@"); else targets=(safetensors idx image onnx); fi
  for t in "${targets[@]}"; do
    bin=build-fuzz/fuzz/fuzz_$t
    [[ -x $bin ]] || { echo "$bin is not built: run bash scripts/fuzz.sh first" >&2; exit 1; }
    mkdir -p "build-fuzz/corpus/$t" build-fuzz/logs
    merged=$(mktemp -d)
    "$bin" -merge=1 "$merged" "fuzz/corpus/$t" "build-fuzz/corpus/$t" >"build-fuzz/logs/$t.merge.log" 2>&1
    # libFuzzer names merged inputs by their SHA-1: drop the seeds' copies.
    for seed in fuzz/corpus/"$t"/*; do
      [[ -f $seed ]] && rm -f "$merged/$(sha1sum "$seed" | cut -d' ' -f1)"
    done
    rm -rf "fuzz/corpus/$t/grown"
    mv "$merged" "fuzz/corpus/$t/grown"
    chmod 755 "fuzz/corpus/$t/grown"
    echo "fuzz_$t: $(ls "fuzz/corpus/$t/grown" | wc -l) inputs in fuzz/corpus/$t/grown ($(( $(du -sb "fuzz/corpus/$t/grown" | cut -f1) / 1024 )) KiB); $(grep -o 'MERGE-OUTER: [0-9]* new files.*' "build-fuzz/logs/$t.merge.log" | tail -1)"
  done
  exit 0
fi

seconds=${1:-${FUZZ_SECONDS:-60}}
if [[ $# -gt 0 ]]; then shift; fi
all_targets=(safetensors idx image onnx)
if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
build=build-fuzz

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLENET_BUILD_FUZZ=ON \
  -DLENET_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  work=$build/corpus/$t
  artifacts=$build/artifacts/$t/
  log=$build/logs/$t.log
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if ((${#regressions[@]})); then
    if ! "$bin" "${regressions[@]}" >"$log" 2>&1; then
      echo "fuzz_$t: a regression input fails again:"; tail -n 40 "$log"
      failed+=("$t (regression)")
      continue
    fi
  fi
  echo "fuzz_$t: ${#regressions[@]} regression inputs pass; fuzzing ${FUZZ_RUNS:+$FUZZ_RUNS inputs (seed ${FUZZ_SEED:-random}) in at most }${seconds} s"
  # -malloc_limit_mb: no single allocation above 1 GiB; -timeout: no input may take 20 s.
  extra=()
  if [[ -n ${FUZZ_SEED:-} ]]; then extra+=(-seed="$FUZZ_SEED"); fi
  if [[ -n ${FUZZ_RUNS:-} ]]; then extra+=(-runs="$FUZZ_RUNS"); fi
  if "$bin" "${extra[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "$log" | sed "s/^/  /" || true
    echo "  corpus: $(ls "$work" | wc -l) inputs in $work"
  else
    echo "fuzz_$t FOUND A PROBLEM (input saved in $artifacts):"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing passed: ${targets[*]}, ${FUZZ_RUNS:+$FUZZ_RUNS inputs or }${seconds} s each"
