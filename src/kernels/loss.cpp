// Losses. Softmax and cross-entropy are fused: loss_i = logsumexp(z_i) − z_i[y_i],
// computed after subtracting the row maximum so exp never overflows.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"

namespace lenet::kernels {

void softmax(int n, int k, const float* logits, float* probs) {
  for (int r = 0; r < n; ++r) {
    const float* z = logits + static_cast<int64_t>(r) * k;
    float* p = probs + static_cast<int64_t>(r) * k;
    float m = *std::max_element(z, z + k);
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += (p[j] = std::exp(z[j] - m));
    for (int j = 0; j < k; ++j) p[j] = static_cast<float>(p[j] / sum);
  }
}

double softmax_cross_entropy(int n, int k, const float* logits, const int32_t* labels, float* dlogits,
                             Reduction reduction, int64_t* correct) {
  double total = 0;
  int64_t hits = 0;
  const double scale = reduction == Reduction::Mean ? 1.0 / n : 1.0;
  for (int r = 0; r < n; ++r) {
    const float* z = logits + static_cast<int64_t>(r) * k;
    const int32_t label = labels[r];
    if (label < 0 || label >= k)
      throw std::invalid_argument("cross_entropy: label " + std::to_string(label) + " of row " + std::to_string(r) +
                                  " is outside [0, " + std::to_string(k) + ")");
    const int best = static_cast<int>(std::max_element(z, z + k) - z);
    hits += best == label;
    const float m = z[best];
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j] - m));
    const double lse = m + std::log(sum);
    total += lse - z[label];
    if (dlogits) {
      float* d = dlogits + static_cast<int64_t>(r) * k;
      // ∂/∂z_j = softmax_j − [j = y]
      for (int j = 0; j < k; ++j) d[j] = static_cast<float>((std::exp(z[j] - lse) - (j == label)) * scale);
    }
  }
  if (correct) *correct = hits;
  return total * scale;
}

double squared_error(int64_t n, const float* y, const float* t, float* dy, Reduction reduction) {
  double total = 0;
  const double scale = reduction == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(y[i]) - t[i];
    total += e * e;
    if (dy) dy[i] = static_cast<float>(2.0 * e * scale);
  }
  return total * scale;
}

}  // namespace lenet::kernels
