#include "lenet/random.h"

#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace lenet {

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("Rng::below: n must be positive");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = next();
  while (v >= limit);
  return v % n;
}

float Rng::normal() {
  float u1 = uniform01(), u2 = uniform01();
  if (u1 < 1e-30f) u1 = 1e-30f;
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(2.0f * std::numbers::pi_v<float> * u2);
}

std::string Rng::state() const {
  std::ostringstream os;
  os << engine_;
  return os.str();
}

void Rng::set_state(const std::string& state) {
  std::istringstream is(state);
  is >> engine_;
  if (is.fail()) throw std::invalid_argument("Rng: malformed generator state");
}

}  // namespace lenet
