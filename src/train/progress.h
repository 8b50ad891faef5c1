// What a training run prints: a live bar with an ETA on a terminal, one plain
// line per epoch otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "lenet/train.h"

namespace lenet::detail {

class Progress {
 public:
  Progress(std::FILE* out, bool live, int epochs, int64_t batches_per_epoch);
  void start_epoch(int epoch);  // 1-based
  // After each training batch: running loss and accuracy of the epoch so far.
  void batch(int64_t done, double loss, double acc);
  // Before the test evaluation (it takes a moment without visible progress).
  void evaluating();
  void end_epoch(const EpochMetrics& m, bool new_best);

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool live_;
  int epochs_;
  int epoch_ = 0;
  int64_t batches_;
  Clock::time_point run_start_, epoch_start_, last_draw_;
  double epoch_seconds_total_ = 0;  // finished epochs, for the run's ETA
};

// "1:05", "12:04:33"
std::string format_duration(double seconds);

}  // namespace lenet::detail
