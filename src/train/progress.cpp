#include "train/progress.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace lenet::detail {

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

Progress::Progress(std::FILE* out, bool live, int epochs, int64_t batches_per_epoch)
    : out_(out), live_(live), epochs_(epochs), batches_(batches_per_epoch), run_start_(Clock::now()) {}

void Progress::start_epoch(int epoch) {
  epoch_ = epoch;
  epoch_start_ = Clock::now();
  last_draw_ = {};
}

void Progress::batch(int64_t done, double loss, double acc) {
  if (!live_) return;
  const auto now = Clock::now();
  // Redraw ten times a second at most: a terminal is slower than a batch.
  if (done < batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double per_batch = elapsed / static_cast<double>(done);
  const double epoch_left = per_batch * static_cast<double>(batches_ - done);
  // Later epochs are estimated from the finished ones (they include the test pass), else from this one.
  const double epoch_estimate = epoch_ > 1 ? epoch_seconds_total_ / (epoch_ - 1) : per_batch * static_cast<double>(batches_);
  const double run_left = epoch_left + epoch_estimate * (epochs_ - epoch_);
  constexpr int width = 24;
  const int filled = static_cast<int>(width * done / std::max<int64_t>(batches_, 1));
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  std::fprintf(out_, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %.4f  ETA %s (run %s)", epoch_, epochs_, bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(batches_), loss, acc, format_duration(epoch_left).c_str(),
               format_duration(run_left).c_str());
  std::fflush(out_);
}

void Progress::evaluating() {
  if (!live_) return;
  std::fprintf(out_, "\r\033[Kepoch %d/%d  evaluating on the test set...", epoch_, epochs_);
  std::fflush(out_);
}

void Progress::end_epoch(const EpochMetrics& m, bool new_best) {
  epoch_seconds_total_ += m.seconds;
  if (live_) std::fprintf(out_, "\r\033[K");
  const int digits = static_cast<int>(std::to_string(epochs_).size());
  std::fprintf(out_, "epoch %*d/%d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.1f s  %.0f img/s%s\n", digits, m.epoch,
               epochs_, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.seconds, m.images_per_s, new_best ? "  *best" : "");
  std::fflush(out_);
}

}  // namespace lenet::detail
