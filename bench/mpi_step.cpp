// What one data-parallel training step costs in computation and in
// communication (bench/mpi_train.sh runs it under mpirun):
//   mpirun -np N lenet_bench_mpi_step SPEC GLOBAL_BATCH STEPS
// Each rank runs forward + backward on its GLOBAL_BATCH / N images, then the
// flat gradient buffer is summed with MPI_Allreduce in place, as the trainer
// does. A barrier before the all-reduce (not timed) keeps the compute
// imbalance out of the communication figure. Rank 0 prints one JSON line:
// parameters, bytes, compute and all-reduce milliseconds per step (medians).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/parallel.h"
#include "lenet/random.h"

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (argc != 4) {
    if (rank == 0) std::fprintf(stderr, "usage: mpirun -np N %s SPEC GLOBAL_BATCH STEPS\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const std::string spec = argv[1];
  const int global_batch = std::stoi(argv[2]), steps = std::stoi(argv[3]);
  const int n = global_batch / ranks + (rank < global_batch % ranks ? 1 : 0);
  lenet::set_num_threads(1);

  lenet::Rng rng(1);
  lenet::Sequential model = lenet::build_model(spec, {1, 28, 28}, 10, &rng);
  lenet::Tensor x({n, 1, 28, 28}), dlogits;
  std::mt19937 gen(static_cast<unsigned>(rank));
  std::uniform_real_distribution<float> pixel(0, 1);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = pixel(gen);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (auto& l : labels) l = static_cast<int32_t>(gen() % 10);

  std::vector<double> compute, reduce;
  auto grads = model.flat_grads();
  for (int s = 0; s <= steps; ++s) {  // step 0 warms up (plans, pages)
    MPI_Barrier(MPI_COMM_WORLD);
    auto t0 = Clock::now();
    model.zero_grad();
    const lenet::Tensor& logits = model.forward(x);
    dlogits.resize(logits.shape());
    lenet::kernels::softmax_cross_entropy(n, 10, logits.data(), labels.data(), dlogits.data(),
                                          lenet::kernels::Reduction::Sum);
    model.backward(dlogits);
    const double c = ms_since(t0);
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, grads.data(), static_cast<int>(grads.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const double r = ms_since(t0);
    if (s > 0) {
      compute.push_back(c);
      reduce.push_back(r);
    }
  }
  // The slowest rank's compute decides the step.
  double mine = median(compute), slowest = 0, comm = median(reduce), comm_max = 0;
  MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&comm, &comm_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf(
        "{\"spec\": \"%s\", \"ranks\": %d, \"global_batch\": %d, \"parameters\": %lld, \"bytes\": %lld, "
        "\"compute_ms\": %.3f, \"allreduce_ms\": %.3f, \"comm_fraction\": %.4f}\n",
        spec.c_str(), ranks, global_batch, static_cast<long long>(grads.size()),
        static_cast<long long>(grads.size() * sizeof(float)), slowest, comm_max, comm_max / (slowest + comm_max));
  MPI_Finalize();
  return 0;
}
