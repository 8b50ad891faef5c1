// The geometry checks of kernels.h: plain code, compiled once (not per ISA).
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"

namespace lenet::kernels {

void ConvGeometry::validate(const std::string& op) const {
  auto sizes = [&] {
    return "input " + std::to_string(h) + "x" + std::to_string(w) + ", kernel " + std::to_string(kh) + "x" +
           std::to_string(kw) + ", padding " + std::to_string(ph) + "x" + std::to_string(pw) + ", stride " +
           std::to_string(sh) + "x" + std::to_string(sw);
  };
  if (n < 1 || c < 1 || h < 1 || w < 1 || o < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
    throw std::invalid_argument(op + ": sizes must be positive (padding non-negative): channels " + std::to_string(c) +
                                "->" + std::to_string(o) + ", " + sizes());
  if (kh > h + 2 * ph || kw > w + 2 * pw)
    throw std::invalid_argument(op + ": kernel larger than the padded input: " + sizes());
}

void PoolGeometry::validate(const std::string& op) const {
  auto sizes = [&] {
    return "input " + std::to_string(h) + "x" + std::to_string(w) + ", window " + std::to_string(kh) + "x" +
           std::to_string(kw) + ", padding " + std::to_string(ph) + "x" + std::to_string(pw) + ", stride " +
           std::to_string(sh) + "x" + std::to_string(sw);
  };
  if (n < 1 || c < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
    throw std::invalid_argument(op + ": sizes must be positive (padding non-negative): " + sizes());
  // PyTorch's rule: padding at most half the window, so no window is all padding.
  if (2 * ph > kh || 2 * pw > kw)
    throw std::invalid_argument(op + ": padding must be at most half the window: " + sizes());
  if (kh > h + 2 * ph || kw > w + 2 * pw)
    throw std::invalid_argument(op + ": window larger than the padded input: " + sizes());
}

}  // namespace lenet::kernels
