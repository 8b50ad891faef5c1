// A seedable random generator, so that a run is reproducible bit for bit.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>

namespace lenet {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}
  uint64_t next() { return engine_(); }
  // Uniform in [0, 1) from the top 24 bits: the same on every platform.
  float uniform01() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform01(); }
  // Uniform integer in [0, n) without modulo bias.
  uint64_t below(uint64_t n);
  // Standard normal (Box–Muller).
  float normal();
  template <class T>
  void shuffle(std::span<T> items) {  // Fisher–Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }
  // The full engine state as text, to resume a run exactly.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
};

}  // namespace lenet
