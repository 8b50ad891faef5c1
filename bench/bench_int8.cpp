// int8 against float in one process, side by side: Fashion-MNIST test-set
// throughput at batch 256 and the median latency of one image (3 000 calls,
// the first 500 dropped), for a float model file and its int8 QDQ file
// (lenet quantize). bench/int8.py runs it.
//
// Throughput: seven rounds, each the float model then the int8 one (best of
// three passes of the test set each, after a warm-up), so that both meet the
// same load; the ratio is the median of the rounds' ratios (on a shared VM the
// load moves by ±20 % within a minute, and a ratio of two best-of figures
// taken at different moments moved by as much), the throughputs the best
// pass of any round.
//   lenet_bench_int8 THREADS DATA_DIR FLOAT_MODEL INT8_MODEL
// prints one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "fashion_mnist.h"
#include "lenet/checkpoint.h"
#include "lenet/parallel.h"
#include "lenet/quant.h"

namespace {

using namespace lenet;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Figures {
  double images_per_s = 0, median_us = 0;
};

Figures measure(Sequential& model, const bench::Split& test, bool latency) {
  std::vector<Tensor> batches;
  for (int64_t b = 0; b < test.count; b += 256) {
    const int64_t n = std::min<int64_t>(256, test.count - b);
    batches.emplace_back(Shape{n, 1, 28, 28},
                         std::span<const float>(test.images.data() + b * 784, static_cast<size_t>(n * 784)));
  }
  Figures f;
  double best = 1e30;
  for (int pass = 0; pass < 4; ++pass) {  // pass 0 warms up
    const auto t0 = Clock::now();
    for (const Tensor& batch : batches) model.forward(batch);
    if (pass) best = std::min(best, seconds_since(t0));
  }
  f.images_per_s = static_cast<double>(test.count) / best;
  if (!latency) return f;
  Tensor x({1, 1, 28, 28});
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
  us.erase(us.begin(), us.begin() + 500);
  std::nth_element(us.begin(), us.begin() + static_cast<ptrdiff_t>(us.size() / 2), us.end());
  f.median_us = us[us.size() / 2];
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: lenet_bench_int8 THREADS DATA_DIR FLOAT_MODEL INT8_MODEL\n");
    return 2;
  }
  set_num_threads(std::stoi(argv[1]));
  const auto test = bench::load_split(argv[2], "t10k");
  LoadedModel fp = load_model(argv[3]);
  LoadedModel q = load_model(argv[4]);
  if (!q.model.quantization()) {
    std::fprintf(stderr, "lenet_bench_int8: %s is not an int8 model\n", argv[4]);
    return 1;
  }
  // Interleaved rounds so that a change in the machine's load hits both alike.
  constexpr int kRounds = 7;
  Figures f{}, i{};
  std::vector<double> ratios;
  for (int round = 0; round < kRounds; ++round) {
    const bool latency = round < 2;  // the latency twice (it moves less), the minimum of both
    const Figures a = measure(fp.model, test, latency), b = measure(q.model, test, latency);
    ratios.push_back(b.images_per_s / a.images_per_s);
    f.images_per_s = std::max(f.images_per_s, a.images_per_s);
    i.images_per_s = std::max(i.images_per_s, b.images_per_s);
    if (latency) {
      f.median_us = round ? std::min(f.median_us, a.median_us) : a.median_us;
      i.median_us = round ? std::min(i.median_us, b.median_us) : b.median_us;
    }
  }
  std::vector<double> sorted = ratios;
  std::sort(sorted.begin(), sorted.end());
  std::string rounds;
  for (double r : ratios) rounds += (rounds.empty() ? "" : ", ") + std::to_string(r).substr(0, 5);
  std::printf(
      "{\"threads\": %s, \"float_images_per_s\": %.1f, \"int8_images_per_s\": %.1f, \"int8_vs_float_median\": %.3f, "
      "\"int8_vs_float_rounds\": [%s], \"float_latency_us\": %.2f, \"int8_latency_us\": %.2f}\n",
      argv[1], f.images_per_s, i.images_per_s, sorted[kRounds / 2], rounds.c_str(), f.median_us, i.median_us);
  return 0;
}
