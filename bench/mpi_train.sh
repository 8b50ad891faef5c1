#!/usr/bin/env bash
# Data-parallel training side by side, in one run (issue 15's figures):
#  1. `lenet train` throughput: 1 process x 2 threads against mpirun -np 2 x 1
#     thread, same data, seed and global batch, in alternating rounds; the
#     ratio of images/s (training time only, from metrics.csv).
#  2. One step's computation and all-reduce time per step (bench/mpi_step.cpp)
#     for lenet-max and wider LeNets, so the communication's growth with the
#     parameter count shows.
# Usage: bench/mpi_train.sh BUILD_DIR [ROUNDS] (BUILD_DIR configured with
# -DLENET_BUILD_BENCH=ON for part 2). Prints the machine load first.
set -euo pipefail
build=${1:?usage: bench/mpi_train.sh BUILD_DIR [ROUNDS]}
rounds=${2:-3}
lenet="$build/lenet"
data=${LENET_BENCH_DATA:-/usr/share/datasets/fashion-mnist}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load before: $(uptime)"
common=(train --data "$data" --arch lenet-max --epochs 1 --batch-size 256 --limit-train 20000 --limit-test 1000 --seed 1)
ips() { tail -1 "$1/metrics.csv" | cut -d, -f7; }
one=() two=()
for r in $(seq "$rounds"); do
  "$lenet" "${common[@]}" --threads 2 --out "$work/one-$r" >/dev/null
  one+=("$(ips "$work/one-$r")")
  mpirun -q -np 2 --bind-to core "$lenet" "${common[@]}" --threads 1 --out "$work/two-$r" >/dev/null
  two+=("$(ips "$work/two-$r")")
  echo "round $r: 1 process x 2 threads ${one[-1]} img/s, 2 processes x 1 thread ${two[-1]} img/s"
done
python3 - "${one[*]}" "${two[*]}" <<'PY'
import statistics, sys
one = [float(v) for v in sys.argv[1].split()]
two = [float(v) for v in sys.argv[2].split()]
m1, m2 = statistics.median(one), statistics.median(two)
print(f"training throughput (median of {len(one)}): 1x2 threads {m1:.0f} img/s, 2 ranks x 1 thread {m2:.0f} img/s, "
      f"ratio {m2 / m1:.2f}x (goal >= 0.9x)")
PY
step="$build/bench/lenet_bench_mpi_step"
if [[ -x "$step" ]]; then
  for spec in lenet-max \
    "conv 18 k5 p2, sigmoid, maxpool 2, conv 48 k5, sigmoid, maxpool 2, flatten, linear 360, sigmoid, linear 252, sigmoid, linear" \
    "conv 60 k5 p2, sigmoid, maxpool 2, conv 160 k5, sigmoid, maxpool 2, flatten, linear 1200, sigmoid, linear 840, sigmoid, linear"; do
    for btl in vader,self tcp,self; do
      steps=20
      [[ $spec == "conv 60"* ]] && steps=3
      printf '%s: ' "btl $btl"
      mpirun -q -np 2 --bind-to core --mca btl "$btl" "$step" "$spec" 256 "$steps"
    done
  done
else
  echo "($step not built: configure with -DLENET_BUILD_BENCH=ON for the per-step figures)"
fi
echo "load after: $(uptime)"
