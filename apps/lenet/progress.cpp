#include "progress.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace lenet::cli {

namespace {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string shape_text(const Shape& chw) {
  return std::to_string(chw[0]) + "x" + std::to_string(chw[1]) + "x" + std::to_string(chw[2]);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

void Progress::on_start(const TrainStart& start) {
  const TrainOptions& o = start.options;
  const DataSplit& data = start.data;
  epochs_ = o.epochs;
  batches_ = start.batches_per_epoch;
  std::fprintf(out_, "training %s (%lld parameters) on %s: %lld training and %lld test images of %s, %d classes\n",
               o.arch.c_str(), static_cast<long long>(start.parameters), data.name.c_str(),
               static_cast<long long>(data.train.count), static_cast<long long>(data.test.count),
               shape_text(start.info.input_shape).c_str(), data.train.num_classes());
  const Normalization& norm = start.info.preprocessing.normalization;
  validating_ = data.val.count > 0;
  if (validating_)
    std::fprintf(out_,
                 "validation: %lld training images held out (seeded, stratified); the best epoch is chosen on them\n",
                 static_cast<long long>(data.val.count));
  if (start.init) {
    std::fprintf(out_, "weights from %s (%lld tensors)\n", start.init->source.string().c_str(),
                 static_cast<long long>(start.init->copied));
    if (!start.init->reinitialised.empty())
      std::fprintf(out_, "re-initialised %s\n", start.init->reinitialised.c_str());
  }
  if (o.freeze > 0)
    std::fprintf(out_, "frozen: the first %d layers (%lld of %lld parameters train)\n", o.freeze,
                 static_cast<long long>(start.trainable), static_cast<long long>(start.parameters));
  std::string settings = o.optimizer + " lr " + short_number(o.lr);
  if (!o.lr_schedule.empty()) settings += ", schedule " + o.lr_schedule;
  if (o.warmup_epochs > 0) settings += ", warm-up " + std::to_string(o.warmup_epochs) + " epochs";
  if (o.clip_grad_norm > 0) settings += ", gradient norm clipped to " + short_number(o.clip_grad_norm);
  if (o.patience > 0) settings += ", patience " + std::to_string(o.patience);
  if (o.momentum > 0) settings += ", momentum " + short_number(o.momentum);
  if (o.weight_decay > 0) settings += ", weight decay " + short_number(o.weight_decay);
  settings += ", batch " + std::to_string(o.batch_size) + ", " + std::to_string(o.epochs) +
              (o.epochs == 1 ? " epoch" : " epochs") + ", seed " + std::to_string(o.seed) + ", " +
              std::to_string(start.threads) + (start.threads == 1 ? " thread" : " threads");
  if (start.processes > 1) settings += " in each of " + std::to_string(start.processes) + " processes";
  auto values = [](const std::vector<float>& v) {
    std::string out;
    for (size_t c = 0; c < v.size(); ++c) out += (c ? "," : "") + short_number(v[c]);
    return out;
  };
  if (norm.enabled()) settings += ", normalised by mean " + values(norm.mean) + " std " + values(norm.std);
  if (!o.augment.empty()) settings += ", augmented " + parse_augmentation(o.augment).text();
  std::fprintf(out_, "%s -> %s\n", settings.c_str(), o.out_dir.string().c_str());
  if (!o.resume_from.empty())
    std::fprintf(out_, "resuming from %s: epoch %d, after batch %lld of %lld\n", o.resume_from.string().c_str(),
                 start.epoch, static_cast<long long>(start.batches_done),
                 static_cast<long long>(start.batches_per_epoch));
  std::fflush(out_);
}

void Progress::on_epoch_start(int epoch) {
  epoch_ = epoch;
  epoch_start_ = Clock::now();
  last_draw_ = {};
}

void Progress::on_batch(int, int64_t done, double loss, double acc) {
  if (!live_) return;
  const auto now = Clock::now();
  // Redraw ten times a second at most: a terminal is slower than a batch.
  if (done < batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double per_batch = elapsed / static_cast<double>(done);
  const double epoch_left = per_batch * static_cast<double>(batches_ - done);
  // Later epochs are estimated from the finished ones (they include the test pass), else from this one.
  const double epoch_estimate = epoch_ > 1 ? epoch_seconds_total_ / (epoch_ - 1)
                                           : per_batch * static_cast<double>(batches_);
  const double run_left = epoch_left + epoch_estimate * (epochs_ - epoch_);
  constexpr int width = 24;
  const int filled = static_cast<int>(width * done / std::max<int64_t>(batches_, 1));
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  std::fprintf(out_, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %.4f  ETA %s (run %s)", epoch_, epochs_,
               bar.c_str(), static_cast<long long>(done), static_cast<long long>(batches_), loss, acc,
               format_duration(epoch_left).c_str(), format_duration(run_left).c_str());
  std::fflush(out_);
  on_bar_line_ = true;
}

void Progress::on_evaluating(int) {
  if (!live_) return;
  std::fprintf(out_, "\r\033[Kepoch %d/%d  evaluating on the test set...", epoch_, epochs_);
  std::fflush(out_);
  on_bar_line_ = true;
}

void Progress::on_epoch(const EpochMetrics& m, bool new_best) {
  epoch_seconds_total_ += m.seconds;
  if (live_) std::fprintf(out_, "\r\033[K");
  on_bar_line_ = false;
  const int digits = static_cast<int>(std::to_string(epochs_).size());
  char val[64] = "", test[64] = "";
  if (!std::isnan(m.val_loss)) std::snprintf(val, sizeof val, "  val loss %.4f acc %.4f", m.val_loss, m.val_acc);
  // With a validation split the test set is scored only for a new best and at the end.
  if (!std::isnan(m.test_loss)) std::snprintf(test, sizeof test, "  test loss %.4f acc %.4f", m.test_loss, m.test_acc);
  std::fprintf(out_, "epoch %*d/%d  train loss %.4f acc %.4f%s%s  lr %s  %.1f s  %.0f img/s%s\n", digits, m.epoch,
               epochs_, m.train_loss, m.train_acc, val, test, short_number(m.lr).c_str(), m.seconds, m.images_per_s,
               new_best ? "  *best" : "");
  std::fflush(out_);
}

void Progress::on_early_stop(int epoch, int waited) {
  std::fprintf(out_, "stopping early after epoch %d: %d epochs without a lower %s loss (--patience %d)\n", epoch,
               waited, validating_ ? "validation" : "test", waited);
  std::fflush(out_);
}

void Progress::on_end(const EpochMetrics& best, const std::filesystem::path& best_checkpoint) {
  if (!std::isnan(best.val_loss))
    std::fprintf(out_, "best: epoch %d, validation loss %.4f, test loss %.4f, test accuracy %.4f -> %s\n", best.epoch,
                 best.val_loss, best.test_loss, best.test_acc, best_checkpoint.string().c_str());
  else
    std::fprintf(out_, "best: epoch %d, test loss %.4f, test accuracy %.4f -> %s\n", best.epoch, best.test_loss,
                 best.test_acc, best_checkpoint.string().c_str());
  std::fflush(out_);
}

void Progress::abandon() {
  if (on_bar_line_) std::fputs("\n", out_);
  on_bar_line_ = false;
  std::fflush(out_);
}

}  // namespace lenet::cli
