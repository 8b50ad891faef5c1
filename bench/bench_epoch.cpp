// lenet.cpp's side of bench/compare.py: the same work as the peers
// (peers/pytorch_lenet.py, peers/libtorch_lenet.cpp, peers/onnxruntime_lenet.js)
// through the library's public API.
//   lenet_bench_epoch train|infer|latency THREADS DATA_DIR [ARCH]
// (ARCH: lenet-max by default; e.g. lenet or lenet-bn) prints one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "fashion_mnist.h"
#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"

namespace {

using namespace lenet;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Images [first, first + n) of the order into x[n, 1, 28, 28] and their labels.
void gather(const bench::Split& s, const std::vector<int64_t>& order, int64_t first, int n, Tensor& x,
            std::vector<int32_t>& labels) {
  x.resize({n, 1, 28, 28});
  labels.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t k = order[static_cast<size_t>(first + i)];
    std::copy_n(s.images.data() + k * 784, 784, x.data() + static_cast<int64_t>(i) * 784);
    labels[static_cast<size_t>(i)] = s.labels[static_cast<size_t>(k)];
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: lenet_bench_epoch train|infer|latency THREADS DATA_DIR [ARCH]\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[3];
  const int threads = std::stoi(argv[2]);
  set_num_threads(threads);
  Rng rng(0);
  const std::string arch = argc == 5 ? argv[4] : "lenet-max";
  Sequential model = build_model(arch, {1, 28, 28}, 10, &rng);
  Tensor x;
  std::vector<int32_t> labels;

  if (mode == "train") {
    const auto train = bench::load_split(dir, "train");
    std::vector<int64_t> order(static_cast<size_t>(train.count));
    std::iota(order.begin(), order.end(), 0);
    Sgd sgd(model, SgdOptions{.lr = 0.9f});
    Tensor dz;
    double loss = 0;
    auto step = [&](int64_t first, int n) {
      gather(train, order, first, n, x, labels);
      sgd.zero_grad();
      const Tensor& z = model.forward(x);
      dz.resize(z.shape());
      loss = kernels::softmax_cross_entropy(n, 10, z.data(), labels.data(), dz.data());
      model.backward(dz);
      sgd.step();
    };
    for (int i = 0; i < 3; ++i) step(i * 256, 256);  // warm-up, not timed (as the peers)
    rng.shuffle(std::span<int64_t>(order));
    const auto t0 = Clock::now();
    for (int64_t b = 0; b < train.count; b += 256) step(b, static_cast<int>(std::min<int64_t>(256, train.count - b)));
    const double s = seconds_since(t0);
    std::printf(
        "{\"peer\": \"lenet.cpp\", \"mode\": \"train\", \"arch\": \"%s\", \"threads\": %d, \"seconds\": %.4f, "
        "\"images_per_s\": %.1f, \"last_loss\": %.4f}\n",
        arch.c_str(), threads, s, train.count / s, loss);
  } else if (mode == "infer") {
    const auto test = bench::load_split(dir, "t10k");
    std::vector<int64_t> order(static_cast<size_t>(test.count));
    std::iota(order.begin(), order.end(), 0);
    std::vector<Tensor> batches;
    model.eval();
    for (int64_t b = 0; b < test.count; b += 256) {
      gather(test, order, b, static_cast<int>(std::min<int64_t>(256, test.count - b)), x, labels);
      batches.push_back(x);
    }
    double best = 1e30;
    for (int pass = 0; pass < 6; ++pass) {  // pass 0 warms up
      const auto t0 = Clock::now();
      for (const Tensor& batch : batches) model.forward(batch);
      if (pass) best = std::min(best, seconds_since(t0));
    }
    std::printf(
        "{\"peer\": \"lenet.cpp\", \"mode\": \"infer\", \"threads\": %d, \"seconds\": %.4f, \"images_per_s\": %.1f}\n",
        threads, best, test.count / best);
  } else if (mode == "latency") {
    const auto test = bench::load_split(dir, "t10k");
    x.resize({1, 1, 28, 28});
    model.eval();
    std::vector<double> us;
    for (int i = 0; i < 3000; ++i) {
      const float* image = test.images.data() + static_cast<int64_t>(i % test.count) * 784;
      const auto t0 = Clock::now();
      std::copy_n(image, 784, x.data());
      const Tensor& z = model.forward(x);
      volatile float sink = z[0];
      (void)sink;
      us.push_back(seconds_since(t0) * 1e6);
    }
    us.erase(us.begin(), us.begin() + 500);  // warm-up
    std::nth_element(us.begin(), us.begin() + static_cast<ptrdiff_t>(us.size() / 2), us.end());
    std::printf("{\"peer\": \"lenet.cpp\", \"mode\": \"latency\", \"threads\": %d, \"median_us\": %.2f}\n", threads,
                us[us.size() / 2]);
  } else {
    std::fprintf(stderr, "lenet_bench_epoch: unknown mode '%s' (train, infer or latency)\n", mode.c_str());
    return 2;
  }
  return 0;
}
