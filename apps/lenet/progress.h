// What `lenet train` prints while it trains (the library prints nothing): the
// run's header and settings, a live bar with an ETA on a terminal, one plain
// line per epoch otherwise (logs, CI), and the best epoch at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "lenet/train.h"

namespace lenet::cli {

class Progress : public TrainObserver {
 public:
  Progress(std::FILE* out, bool live) : out_(out), live_(live) {}
  void on_start(const TrainStart& start) override;
  void on_epoch_start(int epoch) override;
  void on_batch(int epoch, int64_t done, double loss, double acc) override;
  // Before the test evaluation (it takes a moment without visible progress).
  void on_evaluating(int epoch) override;
  void on_epoch(const EpochMetrics& m, bool new_best) override;
  void on_early_stop(int epoch, int waited) override;
  void on_end(const EpochMetrics& best, const std::filesystem::path& best_checkpoint) override;
  // A run that stopped with an error: leaves the bar's line so the message starts a fresh one.
  void abandon();

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool live_;
  bool on_bar_line_ = false;
  int epochs_ = 0;
  int epoch_ = 0;
  int64_t batches_ = 0;
  Clock::time_point epoch_start_, last_draw_;
  double epoch_seconds_total_ = 0;  // finished epochs, for the run's ETA
  bool validating_ = false;         // the run has a validation split
};

// "1:05", "12:04:33"
std::string format_duration(double seconds);

}  // namespace lenet::cli
