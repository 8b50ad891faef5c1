// The C API's cost, side by side with the C++ calls it wraps, in one run:
//   1. batch-1 latency: lenet_predict_u8(model, 1 image) against the C++ path
//      (pixels_to_floats + Sequential::forward + softmax through predict_probabilities);
//   2. 10,000 Fashion-MNIST test images: lenet_predict_u8 against evaluate()
//      (what `lenet eval` runs: batches of 256, loss and confusion matrix);
//   3. the sizes of liblenet.so and of the CLI (statically linked to liblenet.a).
// Rounds alternate the two sides; ratios are of the medians.
//   build/bench/lenet_bench_c_api [--rounds N] [--threads N] [--data DIR]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lenet/c_api.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/parallel.h"
#include "lenet/predict.h"
#include "lenet/random.h"
#include "lenet/train.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

long long file_size(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  std::string data_dir = lenet::default_data_dir().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--data")) data_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--threads")) lenet_set_threads(std::max(0, std::atoi(argv[i + 1])));
  }
  try {
    const lenet::Dataset test = lenet::load_idx_folder(data_dir).test;
    // An untrained lenet-max (the timing does not depend on the weights), saved for the C API to load.
    lenet::Rng rng(1);
    lenet::ModelInfo info;
    lenet::Sequential built = lenet::build_model("lenet-max", test.input_shape(), test.num_classes(), &rng);
    info.arch = built.spec();
    info.input_shape = test.input_shape();
    info.class_names = test.class_names;
    const std::string path = "/tmp/lenet_bench_c_api_" + std::to_string(::getpid()) + ".safetensors";
    lenet::save_checkpoint(path, built, info);
    lenet::LoadedModel cpp = lenet::load_model(path);
    char err[256];
    lenet_model* c = lenet_model_load(path.c_str(), err, sizeof err);
    std::remove(path.c_str());
    if (!c) throw std::runtime_error(err);

    const int classes = test.num_classes();
    const int64_t sample = test.sample_size();
    const int n = static_cast<int>(test.count);
    std::vector<float> probs(static_cast<size_t>(n) * classes), x(static_cast<size_t>(sample));
    constexpr int kCalls = 2000;
    std::vector<double> lat_c, lat_cpp, all_c, all_eval;
    for (int r = 0; r < rounds; ++r) {
      // Batch-1 latency, one image after another (the same 2,000 images both ways).
      auto t0 = Clock::now();
      for (int i = 0; i < kCalls; ++i) {
        const uint8_t* px = test.pixels.data() + static_cast<int64_t>(i % n) * sample;
        lenet::pixels_to_floats(px, sample, cpp.info.preprocessing.normalization, x.data());
        lenet::predict_probabilities(cpp.model, cpp.info, x.data(), 1, probs.data());
      }
      lat_cpp.push_back(seconds_since(t0) / kCalls);
      t0 = Clock::now();
      for (int i = 0; i < kCalls; ++i)
        if (lenet_predict_u8(c, test.pixels.data() + static_cast<int64_t>(i % n) * sample, 1, probs.data(), err,
                             sizeof err))
          throw std::runtime_error(err);
      lat_c.push_back(seconds_since(t0) / kCalls);
      // The whole test set.
      t0 = Clock::now();
      const lenet::Evaluation e = lenet::evaluate(cpp.model, test, cpp.info.preprocessing.normalization, 256);
      all_eval.push_back(seconds_since(t0));
      if (e.count != n) throw std::runtime_error("evaluate saw " + std::to_string(e.count) + " images");
      t0 = Clock::now();
      if (lenet_predict_u8(c, test.pixels.data(), n, probs.data(), err, sizeof err)) throw std::runtime_error(err);
      all_c.push_back(seconds_since(t0));
    }
    lenet_model_free(c);
    std::printf("lenet.cpp C API vs C++ (lenet-max, %d threads, kernels %s, %d rounds, medians)\n",
                lenet::num_threads(), lenet_kernels(), rounds);
    std::printf(
        "batch-1 latency     C++ predict_probabilities %8.1f us   lenet_predict_u8 %8.1f us   ratio C/C++ %.3f\n",
        1e6 * median(lat_cpp), 1e6 * median(lat_c), median(lat_c) / median(lat_cpp));
    std::printf("%d images       evaluate() (lenet eval)   %8.1f ms   lenet_predict_u8 %8.1f ms   ratio C/eval %.3f\n",
                n, 1e3 * median(all_eval), 1e3 * median(all_c), median(all_c) / median(all_eval));
#ifdef LENET_SHARED_LIBRARY
    std::printf("liblenet.so %lld bytes, lenet CLI (static liblenet.a) %lld bytes\n", file_size(LENET_SHARED_LIBRARY),
                file_size(LENET_CLI_BINARY));
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lenet_bench_c_api: %s\n", e.what());
    return 1;
  }
  return 0;
}
