// Model-level benchmarks: a training step of lenet-max at batch 256 (forward,
// loss, backward, SGD), inference throughput at batch 256 and single-image
// latency, plus the OpenBLAS sgemm peak that the FLOP/s figures are compared to.
// bench/compare.py runs these side by side with the peers.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <thread>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"

namespace {

using namespace lenet;

constexpr int kClasses = 10;

// FLOPs of the multiply-adds in convolutions and linear layers for one image:
// forward 2·MACs; a training step adds the weight gradient (2·MACs) and the
// input gradient (2·MACs) except for the first layer, whose input gradient is
// never computed. Element-wise layers are not counted (as the issue counts).
struct ModelFlops {
  double forward = 0, train = 0;
};
ModelFlops model_flops(const Sequential& model, const Shape& chw) {
  ModelFlops f;
  Shape in = {1, chw[0], chw[1], chw[2]};
  auto shapes = model.layer_shapes(in);
  bool first = true;
  for (size_t i = 0; i < model.size(); ++i) {
    const Shape& x = i ? shapes[i - 1] : in;
    double macs = 0;
    if (auto* conv = dynamic_cast<const Conv2d*>(&model[i])) {
      const auto& o = conv->options();
      macs = static_cast<double>(numel(shapes[i])) * o.in * o.kh * o.kw;
    } else if (auto* fc = dynamic_cast<const Linear*>(&model[i])) {
      macs = static_cast<double>(fc->in_features()) * fc->out_features();
    } else {
      continue;
    }
    (void)x;
    f.forward += 2 * macs;
    f.train += 2 * macs * (first ? 2 : 3);
    first = false;
  }
  return f;
}

// Several distinct synthetic batches, normalised like Fashion-MNIST, so the
// benchmark does not run on one cache-hot batch.
struct Batches {
  std::vector<Tensor> x;
  std::vector<std::vector<int32_t>> labels;
  Batches(int batch, int count, Rng& rng) {
    for (int b = 0; b < count; ++b) {
      Tensor t({batch, 1, 28, 28});
      for (float& v : t.span()) v = (rng.uniform01() - 0.2860f) / 0.3530f;
      x.push_back(std::move(t));
      std::vector<int32_t> l(static_cast<size_t>(batch));
      for (auto& v : l) v = static_cast<int32_t>(rng.below(kClasses));
      labels.push_back(std::move(l));
    }
  }
};

void BM_TrainStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0)), batch = static_cast<int>(state.range(1));
  set_num_threads(threads);
  Rng rng(1);
  Sequential model = build_model("lenet-max", {1, 28, 28}, kClasses, &rng);
  Sgd sgd(model, SgdOptions{.lr = 0.9f});
  Batches data(batch, 8, rng);
  Tensor dz({batch, kClasses});
  size_t step = 0;
  double loss = 0;
  for (auto _ : state) {
    const size_t b = step++ % data.x.size();
    sgd.zero_grad();
    const Tensor& z = model.forward(data.x[b]);
    loss = kernels::softmax_cross_entropy(batch, kClasses, z.data(), data.labels[b].data(), dz.data());
    model.backward(dz);
    sgd.step();
  }
  benchmark::DoNotOptimize(loss);
  const double images = static_cast<double>(state.iterations()) * batch;
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(images * model_flops(model, {1, 28, 28}).train,
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = threads;
}
BENCHMARK(BM_TrainStep)
    ->ArgNames({"threads", "batch"})
    ->Args({1, 256})
    ->Args({2, 256})
    ->UseRealTime()
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond);

void BM_Inference(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0)), batch = static_cast<int>(state.range(1));
  set_num_threads(threads);
  Rng rng(2);
  Sequential model = build_model("lenet-max", {1, 28, 28}, kClasses, &rng);
  Batches data(batch, batch == 1 ? 64 : 8, rng);
  size_t step = 0;
  for (auto _ : state) {
    const Tensor& z = model.forward(data.x[step++ % data.x.size()]);
    benchmark::DoNotOptimize(z.data());
  }
  const double images = static_cast<double>(state.iterations()) * batch;
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(images * model_flops(model, {1, 28, 28}).forward,
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Inference)
    ->ArgNames({"threads", "batch"})
    ->Args({1, 256})
    ->Args({2, 256})
    ->Args({1, 1})
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);

// OpenBLAS sgemm on large square matrices: the machine's practical peak. With
// two threads each runs its own single-threaded sgemm (as our kernels do).
void BM_SgemmPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1));
  std::vector<Tensor> a, b, c;
  Rng rng(3);
  for (int t = 0; t < threads; ++t) {
    a.emplace_back(Shape{n, n});
    b.emplace_back(Shape{n, n});
    c.emplace_back(Shape{n, n});
    for (float& v : a.back().span()) v = rng.uniform(-1, 1);
    for (float& v : b.back().span()) v = rng.uniform(-1, 1);
  }
  // Each thread runs its own single-threaded sgemm.
  openblas_set_num_threads(1);
  for (auto _ : state) {
    // A thread per sgemm (microseconds to start, against milliseconds of work).
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t)
      team.emplace_back([&, t] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a[t].data(), n, b[t].data(), n, 0.0f,
                    c[t].data(), n);
      });
    for (auto& member : team) member.join();
  }
  state.counters["FLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * threads * 2.0 * n * n * n,
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SgemmPeak)
    ->ArgNames({"threads", "n"})
    ->Args({1, 1024})
    ->Args({2, 1024})
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
