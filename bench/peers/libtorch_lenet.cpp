// LibTorch peer for bench/compare.py: the same lenet-max, data and loops as
// peers/pytorch_lenet.py and bench_epoch.cpp, through PyTorch's C++ API.
//   libtorch_lenet train|infer|latency THREADS DATA_DIR
// prints one JSON object on stdout.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../fashion_mnist.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

torch::nn::Sequential lenet_max() {
  using namespace torch::nn;
  Sequential net(Conv2d(Conv2dOptions(1, 6, 5).padding(2)), Sigmoid(), MaxPool2d(2), Conv2d(Conv2dOptions(6, 16, 5)),
                 Sigmoid(), MaxPool2d(2), Flatten(), Linear(400, 120), Sigmoid(), Linear(120, 84), Sigmoid(),
                 Linear(84, 10));
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters()) {
    if (p.key().find("weight") != std::string::npos)
      torch::nn::init::xavier_uniform_(p.value());
    else
      p.value().zero_();
  }
  return net;
}

torch::Tensor images_of(const bench::Split& s) {
  return torch::from_blob(const_cast<float*>(s.images.data()), {s.count, 1, 28, 28}, torch::kFloat32).clone();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: libtorch_lenet train|infer|latency THREADS DATA_DIR\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[3];
  const int threads = std::stoi(argv[2]);
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  auto net = lenet_max();

  if (mode == "train") {
    const auto train = bench::load_split(dir, "train");
    auto x = images_of(train);
    auto y = torch::from_blob(const_cast<int32_t*>(train.labels.data()), {train.count}, torch::kInt32).to(torch::kLong);
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.9));
    auto step = [&](const torch::Tensor& idx) {
      sgd.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x.index_select(0, idx)), y.index_select(0, idx));
      loss.backward();
      sgd.step();
      return loss.item<double>();
    };
    for (int i = 0; i < 3; ++i) step(torch::arange(i * 256, (i + 1) * 256));  // warm-up, not timed
    auto order = torch::randperm(train.count, torch::kLong);
    const auto t0 = Clock::now();
    double loss = 0;
    for (int64_t b = 0; b < train.count; b += 256)
      loss = step(order.slice(0, b, std::min<int64_t>(b + 256, train.count)));
    const double s = seconds_since(t0);
    std::printf(
        "{\"peer\": \"libtorch\", \"mode\": \"train\", \"threads\": %d, \"seconds\": %.4f, \"images_per_s\": %.1f, "
        "\"last_loss\": %.4f}\n",
        threads, s, train.count / s, loss);
  } else if (mode == "infer") {
    const auto test = bench::load_split(dir, "t10k");
    auto x = images_of(test);
    torch::NoGradGuard no_grad;
    net->eval();
    double best = 1e30;
    for (int pass = 0; pass < 6; ++pass) {  // pass 0 warms up
      const auto t0 = Clock::now();
      for (int64_t b = 0; b < test.count; b += 256) {
        auto z = net->forward(x.slice(0, b, std::min<int64_t>(b + 256, test.count)));
        (void)z;
      }
      if (pass) best = std::min(best, seconds_since(t0));
    }
    std::printf(
        "{\"peer\": \"libtorch\", \"mode\": \"infer\", \"threads\": %d, \"seconds\": %.4f, \"images_per_s\": %.1f}\n",
        threads, best, test.count / best);
  } else if (mode == "latency") {
    const auto test = bench::load_split(dir, "t10k");
    auto x = images_of(test);
    torch::NoGradGuard no_grad;
    net->eval();
    std::vector<double> us;
    for (int i = 0; i < 3000; ++i) {
      auto one = x.slice(0, i % test.count, i % test.count + 1);
      const auto t0 = Clock::now();
      auto z = net->forward(one);
      (void)z.data_ptr<float>();
      us.push_back(seconds_since(t0) * 1e6);
    }
    us.erase(us.begin(), us.begin() + 500);  // warm-up
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    std::printf("{\"peer\": \"libtorch\", \"mode\": \"latency\", \"threads\": %d, \"median_us\": %.2f}\n", threads,
                us[us.size() / 2]);
  } else {
    std::fprintf(stderr, "libtorch_lenet: unknown mode '%s' (train, infer or latency)\n", mode.c_str());
    return 2;
  }
  return 0;
}
