// The training run: per epoch, minibatches of forward, softmax cross-entropy
// (mean over the batch, as PyTorch's nn.CrossEntropyLoss), backward and an
// optimizer step; then the test evaluation, the checkpoints, metrics.csv and the hooks.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "lenet/train.h"
#include "train/progress.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void validate(const DataSplit& data, const TrainOptions& o) {
  auto positive = [](const char* what, double v) {
    if (!(v > 0) || !std::isfinite(v))
      throw std::invalid_argument(std::string("train: ") + what + " must be positive, got " + short_number(v));
  };
  if (o.epochs < 1) throw std::invalid_argument("train: epochs must be positive, got " + std::to_string(o.epochs));
  if (o.batch_size < 1) throw std::invalid_argument("train: batch size must be positive, got " + std::to_string(o.batch_size));
  positive("learning rate", o.lr);
  if (!(o.momentum >= 0 && o.momentum < 1))
    throw std::invalid_argument("train: momentum must lie in [0, 1), got " + short_number(o.momentum));
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
    throw std::invalid_argument("train: weight decay must be >= 0, got " + short_number(o.weight_decay));
  if (o.optimizer != "sgd" && o.optimizer != "adam")
    throw std::invalid_argument("train: unknown optimizer '" + o.optimizer + "' (known: sgd, adam)");
  if (o.optimizer == "adam" && o.momentum != 0)
    throw std::invalid_argument("train: momentum applies to sgd; adam has its own moment estimates");
  if (o.out_dir.empty()) throw std::invalid_argument("train: no output folder given");
  if (data.train.count == 0) throw std::invalid_argument("train: the training set is empty");
  if (data.test.count == 0) throw std::invalid_argument("train: the test set is empty");
  if (data.train.input_shape() != data.test.input_shape())
    throw std::invalid_argument("train: training images are " + to_string(data.train.input_shape()) + " but test images are " +
                                to_string(data.test.input_shape()));
  if (data.train.class_names != data.test.class_names)
    throw std::invalid_argument("train: the training and test sets name different classes");
  if (data.train.num_classes() < 2)
    throw std::invalid_argument("train: at least two classes are needed, got " + std::to_string(data.train.num_classes()));
}

std::unique_ptr<Optimizer> make_optimizer(Sequential& model, const TrainOptions& o) {
  if (o.optimizer == "sgd") return std::make_unique<Sgd>(model, SgdOptions{o.lr, o.momentum, o.weight_decay});
  AdamOptions a;
  a.lr = o.lr;
  a.weight_decay = o.weight_decay;
  return std::make_unique<Adam>(model, a);
}

std::string shape_text(const Shape& chw) {
  return std::to_string(chw[0]) + "x" + std::to_string(chw[1]) + "x" + std::to_string(chw[2]);
}

}  // namespace

std::vector<EpochMetrics> train(const DataSplit& data, const TrainOptions& o, const std::vector<EpochHook>& hooks) {
  using Clock = std::chrono::steady_clock;
  validate(data, o);
  set_num_threads(o.threads);

  // Weights from the seed; the shuffle order from (seed, epoch) inside the loader.
  Rng rng(o.seed);
  Sequential model = build_model(o.arch, data.train.input_shape(), data.train.num_classes(), &rng);
  auto optimizer = make_optimizer(model, o);

  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = data.train.input_shape();
  info.class_names = data.train.class_names;
  info.preprocessing = data.preprocessing;
  if (o.normalize) info.preprocessing.normalization = compute_normalization(data.train);
  info.dataset = data.name;
  const Normalization norm = info.preprocessing.normalization;

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw std::runtime_error("cannot create the output folder " + o.out_dir.string() + ": " + ec.message());

  DataLoader loader(data.train, o.batch_size, /*shuffle=*/true, o.seed, norm);
  std::printf("training %s (%lld parameters) on %s: %lld training and %lld test images of %s, %d classes\n",
              o.arch.c_str(), static_cast<long long>(model.parameter_count()), data.name.c_str(),
              static_cast<long long>(data.train.count), static_cast<long long>(data.test.count),
              shape_text(info.input_shape).c_str(), data.train.num_classes());
  std::string settings = o.optimizer + " lr " + short_number(o.lr);
  if (o.momentum > 0) settings += ", momentum " + short_number(o.momentum);
  if (o.weight_decay > 0) settings += ", weight decay " + short_number(o.weight_decay);
  settings += ", batch " + std::to_string(o.batch_size) + ", " + std::to_string(o.epochs) + (o.epochs == 1 ? " epoch" : " epochs") +
              ", seed " + std::to_string(o.seed) + ", " + std::to_string(num_threads()) + (num_threads() == 1 ? " thread" : " threads");
  if (norm.enabled()) settings += ", normalised by mean " + short_number(norm.mean) + " std " + short_number(norm.std);
  std::printf("%s -> %s\n", settings.c_str(), o.out_dir.string().c_str());
  std::fflush(stdout);

  detail::Progress progress(stdout, o.progress, o.epochs, loader.batches_per_epoch());
  const int k = data.train.num_classes();
  Tensor images, dlogits;
  std::vector<int32_t> labels;
  std::vector<EpochMetrics> history;
  double best_loss = INFINITY;

  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    progress.start_epoch(epoch);
    loader.start_epoch(epoch - 1);
    double loss_sum = 0;  // Σ over batches of (mean batch loss · batch size)
    int64_t correct = 0, seen = 0, batches = 0;
    while (loader.next(images, labels)) {
      const int n = static_cast<int>(labels.size());
      optimizer->zero_grad();
      const Tensor& logits = model.forward(images);
      dlogits.resize(logits.shape());
      int64_t hits = 0;
      const double loss = kernels::softmax_cross_entropy(n, k, logits.data(), labels.data(), dlogits.data(),
                                                         kernels::Reduction::Mean, &hits);
      model.backward(dlogits);
      optimizer->step();
      loss_sum += loss * n;
      correct += hits;
      seen += n;
      progress.batch(++batches, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen));
    }
    const double train_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();

    progress.evaluating();
    const Evaluation test = evaluate(model, data.test, norm);
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    m.test_loss = test.loss;
    m.test_acc = test.accuracy;
    m.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    m.images_per_s = static_cast<double>(seen) / train_seconds;
    history.push_back(m);

    info.epoch = epoch;
    info.metrics = {{"train_loss", m.train_loss}, {"train_acc", m.train_acc}, {"test_loss", m.test_loss},
                    {"test_acc", m.test_acc},     {"seconds", m.seconds},     {"images_per_s", m.images_per_s}};
    const bool new_best = m.test_loss < best_loss;  // NaN never wins
    if (new_best) {
      best_loss = m.test_loss;
      save_checkpoint(o.out_dir / "best.safetensors", model, info);
    }
    // last carries the optimizer state too, so a run can be continued from it.
    save_checkpoint(o.out_dir / "last.safetensors", model, info, optimizer.get());
    write_metrics_csv(o.out_dir / "metrics.csv", history);
    progress.end_epoch(m, new_best);

    const EpochEvent event{o.out_dir, history, new_best, model, info, test, data};
    for (const EpochHook& hook : hooks) hook(event);
  }

  size_t best = 0;
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].test_loss < history[best].test_loss) best = i;
  std::printf("best: epoch %d, test loss %.4f, test accuracy %.4f -> %s\n", history[best].epoch, history[best].test_loss,
              history[best].test_acc, (o.out_dir / "best.safetensors").string().c_str());
  std::fflush(stdout);
  return history;
}

}  // namespace lenet
