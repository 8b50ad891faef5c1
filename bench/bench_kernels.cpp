// Micro-benchmarks of every kernel, forward and backward, on LeNet's shapes at
// batch 256, with 1 and 2 threads. FLOP/s counts the multiply-adds as 2 FLOPs;
// element-wise kernels and pooling count one FLOP per element they read.
#include <benchmark/benchmark.h>

#include <vector>

#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "lenet/random.h"
#include "lenet/tensor.h"

namespace {

using namespace lenet;
using namespace lenet::kernels;

constexpr int kBatch = 256;

Tensor random_tensor(int64_t n, Rng& rng) {
  Tensor t({n});
  for (float& v : t.span()) v = rng.uniform(-1, 1);
  return t;
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// LeNet's two convolutions: 0 = conv1 (1->6, 5x5, pad 2, 28x28), 1 = conv2 (6->16, 5x5, 14x14).
ConvGeometry lenet_conv(int which) {
  ConvGeometry g;
  g.n = kBatch;
  g.kh = g.kw = 5;
  if (which == 0) {
    g.c = 1;
    g.o = 6;
    g.h = g.w = 28;
    g.ph = g.pw = 2;
  } else {
    g.c = 6;
    g.o = 16;
    g.h = g.w = 14;
  }
  return g;
}

struct ConvData {
  ConvGeometry g;
  Tensor x, w, b, y, dy, dx, dw, db;
  explicit ConvData(const ConvGeometry& geometry) : g(geometry) {
    Rng rng(1);
    const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ws = int64_t(g.o) * g.c * g.kh * g.kw,
                  ys = int64_t(g.n) * g.o * g.oh() * g.ow();
    x = random_tensor(xs, rng);
    w = random_tensor(ws, rng);
    b = random_tensor(g.o, rng);
    dy = random_tensor(ys, rng);
    y = Tensor({ys});
    dx = Tensor({xs});
    dw = Tensor({ws});
    db = Tensor({g.o});
  }
  double macs() const { return double(g.n) * g.o * g.oh() * g.ow() * g.c * g.kh * g.kw; }
};

void BM_Conv2dForward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(1)));
  ConvData d(lenet_conv(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    conv2d_forward(d.g, d.x.data(), d.w.data(), d.b.data(), d.y.data());
    benchmark::DoNotOptimize(d.y.data());
  }
  set_flops(state, 2 * d.macs());
}

// conv1 is the first layer: no input gradient, as in training.
void BM_Conv2dBackward(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  set_num_threads(static_cast<int>(state.range(1)));
  ConvData d(lenet_conv(which));
  float* dx = which == 0 ? nullptr : d.dx.data();
  for (auto _ : state) {
    conv2d_backward(d.g, d.x.data(), d.w.data(), d.dy.data(), dx, d.dw.data(), d.db.data());
    benchmark::DoNotOptimize(d.dw.data());
  }
  set_flops(state, (dx ? 4 : 2) * d.macs());
}

PoolGeometry lenet_pool(int which) {
  PoolGeometry g;
  g.n = kBatch;
  if (which == 0) {
    g.c = 6;
    g.h = g.w = 28;
  } else {
    g.c = 16;
    g.h = g.w = 10;
  }
  return g;
}

template <bool Max>
void BM_Pool2dForward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(1)));
  PoolGeometry g = lenet_pool(static_cast<int>(state.range(0)));
  Rng rng(2);
  const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ys = int64_t(g.n) * g.c * g.oh() * g.ow();
  Tensor x = random_tensor(xs, rng), y({ys});
  std::vector<int32_t> arg(static_cast<size_t>(ys));
  for (auto _ : state) {
    if constexpr (Max)
      maxpool2d_forward(g, x.data(), y.data(), arg.data());
    else
      avgpool2d_forward(g, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(state, double(xs));
}

template <bool Max>
void BM_Pool2dBackward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(1)));
  PoolGeometry g = lenet_pool(static_cast<int>(state.range(0)));
  Rng rng(3);
  const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ys = int64_t(g.n) * g.c * g.oh() * g.ow();
  Tensor x = random_tensor(xs, rng), y({ys}), dy = random_tensor(ys, rng), dx({xs});
  std::vector<int32_t> arg(static_cast<size_t>(ys));
  maxpool2d_forward(g, x.data(), y.data(), arg.data());
  for (auto _ : state) {
    if constexpr (Max)
      maxpool2d_backward(g, dy.data(), arg.data(), dx.data());
    else
      avgpool2d_backward(g, dy.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
  }
  set_flops(state, double(xs));
}

// Linear layers of LeNet: 0 = 400->120, 1 = 120->84, 2 = 84->10.
void linear_shape(int which, int& in, int& out) {
  const int ins[] = {400, 120, 84}, outs[] = {120, 84, 10};
  in = ins[which];
  out = outs[which];
}

void BM_LinearForward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(1)));
  int in, out;
  linear_shape(static_cast<int>(state.range(0)), in, out);
  Rng rng(4);
  Tensor x = random_tensor(int64_t(kBatch) * in, rng), w = random_tensor(int64_t(out) * in, rng),
         b = random_tensor(out, rng), y({int64_t(kBatch) * out});
  for (auto _ : state) {
    linear_forward(kBatch, in, out, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(state, 2.0 * kBatch * in * out);
}

void BM_LinearBackward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(1)));
  int in, out;
  linear_shape(static_cast<int>(state.range(0)), in, out);
  Rng rng(5);
  Tensor x = random_tensor(int64_t(kBatch) * in, rng), w = random_tensor(int64_t(out) * in, rng),
         dy = random_tensor(int64_t(kBatch) * out, rng), dx({int64_t(kBatch) * in}), dw({int64_t(out) * in}), db({out});
  for (auto _ : state) {
    linear_backward(kBatch, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    benchmark::DoNotOptimize(dw.data());
  }
  set_flops(state, 4.0 * kBatch * in * out);
}

// Activations on conv1's output, the largest activation of LeNet.
enum Act { kSigmoid, kReLU, kTanh };
template <Act A, bool Backward>
void BM_Activation(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  const int64_t n = int64_t(kBatch) * 6 * 28 * 28;
  Rng rng(6);
  Tensor x = random_tensor(n, rng), y({n}), dy = random_tensor(n, rng), dx({n});
  for (auto _ : state) {
    if constexpr (!Backward) {
      if constexpr (A == kSigmoid) sigmoid_forward(n, x.data(), y.data());
      if constexpr (A == kReLU) relu_forward(n, x.data(), y.data());
      if constexpr (A == kTanh) tanh_forward(n, x.data(), y.data());
      benchmark::DoNotOptimize(y.data());
    } else {
      if constexpr (A == kSigmoid) sigmoid_backward(n, x.data(), dy.data(), dx.data());
      if constexpr (A == kReLU) relu_backward(n, x.data(), dy.data(), dx.data());
      if constexpr (A == kTanh) tanh_backward(n, x.data(), dy.data(), dx.data());
      benchmark::DoNotOptimize(dx.data());
    }
  }
  set_flops(state, double(n));
}

void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  Rng rng(7);
  Tensor z = random_tensor(int64_t(kBatch) * 10, rng), dz({int64_t(kBatch) * 10});
  std::vector<int32_t> labels(kBatch);
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
  for (auto _ : state) {
    double loss = softmax_cross_entropy(kBatch, 10, z.data(), labels.data(), dz.data());
    benchmark::DoNotOptimize(loss);
  }
  set_flops(state, double(kBatch) * 10);
}

void conv_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"layer", "threads"});
  for (int layer : {0, 1})
    for (int threads : {1, 2}) b->Args({layer, threads});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
void pool_args(benchmark::internal::Benchmark* b) { conv_args(b); }
void linear_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"layer", "threads"});
  for (int layer : {0, 1, 2})
    for (int threads : {1, 2}) b->Args({layer, threads});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
void thread_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads"})->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Conv2dForward)->Apply(conv_args);
BENCHMARK(BM_Conv2dBackward)->Apply(conv_args);
BENCHMARK(BM_Pool2dForward<true>)->Name("BM_MaxPool2dForward")->Apply(pool_args);
BENCHMARK(BM_Pool2dBackward<true>)->Name("BM_MaxPool2dBackward")->Apply(pool_args);
BENCHMARK(BM_Pool2dForward<false>)->Name("BM_AvgPool2dForward")->Apply(pool_args);
BENCHMARK(BM_Pool2dBackward<false>)->Name("BM_AvgPool2dBackward")->Apply(pool_args);
BENCHMARK(BM_LinearForward)->Apply(linear_args);
BENCHMARK(BM_LinearBackward)->Apply(linear_args);
BENCHMARK(BM_Activation<kSigmoid, false>)->Name("BM_SigmoidForward")->Apply(thread_args);
BENCHMARK(BM_Activation<kSigmoid, true>)->Name("BM_SigmoidBackward")->Apply(thread_args);
BENCHMARK(BM_Activation<kReLU, false>)->Name("BM_ReLUForward")->Apply(thread_args);
BENCHMARK(BM_Activation<kReLU, true>)->Name("BM_ReLUBackward")->Apply(thread_args);
BENCHMARK(BM_Activation<kTanh, false>)->Name("BM_TanhForward")->Apply(thread_args);
BENCHMARK(BM_Activation<kTanh, true>)->Name("BM_TanhBackward")->Apply(thread_args);
BENCHMARK(BM_SoftmaxCrossEntropy)->Unit(benchmark::kMicrosecond);

}  // namespace
