// What --augment costs a training run: the same training steps (the trainer's
// DataLoader → forward → cross-entropy → backward → Adam) with and without an
// augmentation, side by side on Fashion-MNIST, alternating so that a loaded
// machine's drift hits both alike.
//   lenet_bench_augment DATA_DIR [AUGMENT] [ARCH] [BATCHES] [ROUNDS] [THREADS]
// (defaults: crop:2,flip, lenet-relu, 60 batches of 256, 3 rounds, all cores)
// prints one JSON object: images/s of each and the overhead, the loader's own
// time per batch, and the load average before and after.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"

namespace {

using namespace lenet;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

struct Timing {
  double seconds = 0, loader_seconds = 0;
  int64_t images = 0;
};

// `batches` steps of a fresh model from the same seed; the loader's share timed apart.
Timing run(const Dataset& train, const std::string& arch, const Augmentation& augmentation, int batches) {
  Rng rng(0);
  Sequential model = build_model(arch, train.input_shape(), train.num_classes(), &rng);
  Adam adam(model.flat_values(), model.flat_grads(), AdamOptions{});
  DataLoader loader(train, 256, /*shuffle=*/true, /*seed=*/0, {}, augmentation);
  loader.start_epoch(0);
  Tensor x, dz;
  std::vector<int32_t> labels;
  Timing t;
  const auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) {
    const auto l0 = Clock::now();
    if (!loader.next(x, labels)) {
      loader.start_epoch(1);
      loader.next(x, labels);
    }
    t.loader_seconds += since(l0);
    const int n = static_cast<int>(labels.size());
    adam.zero_grad();
    const Tensor& z = model.forward(x);
    dz.resize(z.shape());
    kernels::softmax_cross_entropy(n, train.num_classes(), z.data(), labels.data(), dz.data());
    model.backward(dz);
    adam.step();
    t.images += n;
  }
  t.seconds = since(t0);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 7) {
    std::fprintf(stderr, "usage: lenet_bench_augment DATA_DIR [AUGMENT] [ARCH] [BATCHES] [ROUNDS] [THREADS]\n");
    return 2;
  }
  const std::string spec = argc > 2 ? argv[2] : "crop:2,flip";
  const std::string arch = argc > 3 ? argv[3] : "lenet-relu";
  const int batches = argc > 4 ? std::stoi(argv[4]) : 60;
  const int rounds = argc > 5 ? std::stoi(argv[5]) : 3;
  set_num_threads(argc > 6 ? std::stoi(argv[6]) : 0);
  const Augmentation augmentation = parse_augmentation(spec);
  const Dataset train = load_idx_folder(argv[1]).train;
  const std::string load_before = load_average();
  run(train, arch, {}, 3);  // warm-up: the engine's plans, the pool
  Timing plain, augmented;
  for (int r = 0; r < rounds; ++r) {  // alternating, so drift hits both
    for (int which = 0; which < 2; ++which) {
      const bool aug = (r + which) % 2 == 1;
      const Timing t = run(train, arch, aug ? augmentation : Augmentation{}, batches);
      Timing& sum = aug ? augmented : plain;
      sum.seconds += t.seconds, sum.loader_seconds += t.loader_seconds, sum.images += t.images;
    }
  }
  const double plain_ips = plain.images / plain.seconds, aug_ips = augmented.images / augmented.seconds;
  std::printf(
      "{\"arch\": \"%s\", \"augment\": \"%s\", \"threads\": %d, \"batches\": %d, \"rounds\": %d, "
      "\"plain_images_per_s\": %.1f, \"augmented_images_per_s\": %.1f, \"overhead_percent\": %.2f, "
      "\"loader_ms_per_batch_plain\": %.3f, \"loader_ms_per_batch_augmented\": %.3f, "
      "\"loadavg_before\": \"%s\", \"loadavg_after\": \"%s\"}\n",
      arch.c_str(), augmentation.text().c_str(), num_threads(), batches, rounds, plain_ips, aug_ips,
      100.0 * (plain_ips / aug_ips - 1.0), 1e3 * plain.loader_seconds / (rounds * batches),
      1e3 * augmented.loader_seconds / (rounds * batches), load_before.c_str(), load_average().c_str());
  return 0;
}
