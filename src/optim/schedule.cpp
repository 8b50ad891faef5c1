// Learning-rate schedules: the closed forms of torch.optim.lr_scheduler's
// StepLR, MultiStepLR, CosineAnnealingLR and OneCycleLR, with an optional
// linear warm-up (LinearLR inside SequentialLR). The lr is a pure function of
// the position in the run, so a resumed run needs nothing but its options.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

#include "lenet/optim.h"

namespace lenet {

namespace {

[[noreturn]] void bad_schedule(const std::string& text, const std::string& why) {
  throw std::invalid_argument("--lr-schedule '" + text + "': " + why +
                              " (expected step:S:G, multistep:E1,E2,...:G, cosine[:ETA_MIN] or onecycle:MAX)");
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

double real(const std::string& text, const std::string& field, const char* what) {
  double v = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || !std::isfinite(v))
    bad_schedule(text, std::string(what) + " '" + field + "' is not a number");
  return v;
}

int whole(const std::string& text, const std::string& field, const char* what) {
  int v = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || v < 1)
    bad_schedule(text, std::string(what) + " '" + field + "' is not a positive whole number");
  return v;
}

// OneCycleLR's cosine annealing from `start` to `end` at fraction pct.
double annealing_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
}

}  // namespace

LrSchedule parse_lr_schedule(const std::string& text, int warmup_epochs) {
  LrSchedule s;
  if (warmup_epochs < 0)
    throw std::invalid_argument("--warmup-epochs must be >= 0, got " + std::to_string(warmup_epochs));
  s.warmup_epochs = warmup_epochs;
  if (text.empty() || text == "constant") return s;
  const std::vector<std::string> f = split(text, ':');
  const std::string& kind = f[0];
  if (kind == "step") {
    if (f.size() != 3) bad_schedule(text, "step takes a step size and a factor");
    s.kind = LrSchedule::Kind::step;
    s.step_size = whole(text, f[1], "step size");
    s.gamma = real(text, f[2], "factor");
  } else if (kind == "multistep") {
    if (f.size() != 3) bad_schedule(text, "multistep takes milestones and a factor");
    s.kind = LrSchedule::Kind::multistep;
    for (const std::string& m : split(f[1], ',')) s.milestones.push_back(whole(text, m, "milestone"));
    if (!std::is_sorted(s.milestones.begin(), s.milestones.end()) ||
        std::adjacent_find(s.milestones.begin(), s.milestones.end()) != s.milestones.end())
      bad_schedule(text, "milestones must increase");
    s.gamma = real(text, f[2], "factor");
  } else if (kind == "cosine") {
    if (f.size() > 2) bad_schedule(text, "cosine takes at most a minimum lr");
    s.kind = LrSchedule::Kind::cosine;
    if (f.size() == 2) s.eta_min = real(text, f[1], "minimum lr");
    if (s.eta_min < 0) bad_schedule(text, "the minimum lr must be >= 0");
  } else if (kind == "onecycle") {
    if (f.size() != 2) bad_schedule(text, "onecycle takes its maximum lr");
    s.kind = LrSchedule::Kind::onecycle;
    s.max_lr = real(text, f[1], "maximum lr");
    if (!(s.max_lr > 0)) bad_schedule(text, "the maximum lr must be positive");
    if (warmup_epochs > 0)
      throw std::invalid_argument("--warmup-epochs does not combine with --lr-schedule onecycle (it warms up itself)");
  } else {
    bad_schedule(text, "unknown schedule '" + kind + "'");
  }
  if ((s.kind == LrSchedule::Kind::step || s.kind == LrSchedule::Kind::multistep) && !(s.gamma > 0))
    bad_schedule(text, "the factor must be positive");
  return s;
}

void check_lr_schedule(const LrSchedule& s, int epochs) {
  if (s.warmup_epochs >= epochs)
    throw std::invalid_argument("--warmup-epochs " + std::to_string(s.warmup_epochs) + " leaves none of the " +
                                std::to_string(epochs) + " epochs to the schedule");
}

double LrSchedule::lr(double base_lr, int epoch, int64_t batch, int epochs, int64_t batches) const {
  if (kind == Kind::onecycle) {
    // OneCycleLR: step_num counts batches from 0; two phases, up then down.
    const double total = static_cast<double>(epochs) * static_cast<double>(batches);
    const double step = static_cast<double>(epoch) * static_cast<double>(batches) + static_cast<double>(batch);
    const double initial = max_lr / 25.0, min_lr = initial / 1e4;
    const double up_end = 0.3 * total - 1, down_end = total - 1;
    if (step <= up_end) return annealing_cos(initial, max_lr, up_end > 0 ? step / up_end : 1.0);
    return annealing_cos(max_lr, min_lr, (step - up_end) / (down_end - up_end));
  }
  if (epoch < warmup_epochs) return base_lr * (epoch + 1) / (warmup_epochs + 1);
  const int e = epoch - warmup_epochs;  // the main schedule's own epoch
  switch (kind) {
    case Kind::step: return base_lr * std::pow(gamma, e / step_size);
    case Kind::multistep: {
      const auto passed = std::upper_bound(milestones.begin(), milestones.end(), e) - milestones.begin();
      return base_lr * std::pow(gamma, static_cast<double>(passed));
    }
    case Kind::cosine: {
      const int t_max = epochs - warmup_epochs;
      return eta_min + (base_lr - eta_min) * (1 + std::cos(std::numbers::pi * e / t_max)) / 2;
    }
    default: return base_lr;
  }
}

}  // namespace lenet
