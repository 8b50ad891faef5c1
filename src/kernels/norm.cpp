// Batch normalisation and dropout on NCHW tensors: the lone modules' kernels.
// Plain code compiled once (not per ISA): the engine runs its own blocked
// versions (runtime/pipeline.cpp); these serve a module used on its own.
#include <cmath>
#include <vector>

#include "kernels/dropout_mask.h"
#include "lenet/kernels.h"

namespace lenet::kernels {

// x[N,C,P]: channel ch of image i is x[(i·C + ch)·P ...].
void batchnorm_batch_stats(int n, int c, int64_t plane, const float* x, float eps, float* mean, float* var,
                           float* invstd) {
  const double count = static_cast<double>(n) * static_cast<double>(plane);
  for (int ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      const float* p = x + (static_cast<int64_t>(i) * c + ch) * plane;
      for (int64_t e = 0; e < plane; ++e) sum += p[e];
    }
    const double m = sum / count;
    double sq = 0;  // two passes: no cancellation when the mean is large
    for (int i = 0; i < n; ++i) {
      const float* p = x + (static_cast<int64_t>(i) * c + ch) * plane;
      for (int64_t e = 0; e < plane; ++e) sq += (p[e] - m) * (p[e] - m);
    }
    const double v = sq / count;
    mean[ch] = static_cast<float>(m);
    var[ch] = static_cast<float>(v);
    invstd[ch] = static_cast<float>(1.0 / std::sqrt(v + static_cast<double>(eps)));
  }
}

void batchnorm_forward(int n, int c, int64_t plane, const float* x, const float* mean, const float* invstd,
                       const float* weight, const float* bias, float* y) {
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch) {
      const float scale = weight[ch] * invstd[ch];
      const float shift = bias[ch] - mean[ch] * scale;
      const int64_t at = (static_cast<int64_t>(i) * c + ch) * plane;
      for (int64_t e = 0; e < plane; ++e) y[at + e] = x[at + e] * scale + shift;
    }
}

void batchnorm_backward(int n, int c, int64_t plane, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* dy, bool batch_statistics, float* dx, float* dweight,
                        float* dbias) {
  const double count = static_cast<double>(n) * static_cast<double>(plane);
  for (int ch = 0; ch < c; ++ch) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int i = 0; i < n; ++i) {
      const int64_t at = (static_cast<int64_t>(i) * c + ch) * plane;
      for (int64_t e = 0; e < plane; ++e) {
        sum_dy += dy[at + e];
        sum_dy_xhat += static_cast<double>(dy[at + e]) * ((x[at + e] - mean[ch]) * invstd[ch]);
      }
    }
    dweight[ch] += static_cast<float>(sum_dy_xhat);
    dbias[ch] += static_cast<float>(sum_dy);
    if (!dx) continue;
    const float scale = weight[ch] * invstd[ch];
    const auto mean_dy = static_cast<float>(batch_statistics ? sum_dy / count : 0.0);
    const auto mean_dy_xhat = static_cast<float>(batch_statistics ? sum_dy_xhat / count : 0.0);
    for (int i = 0; i < n; ++i) {
      const int64_t at = (static_cast<int64_t>(i) * c + ch) * plane;
      for (int64_t e = 0; e < plane; ++e) {
        const float xhat = (x[at + e] - mean[ch]) * invstd[ch];
        dx[at + e] = scale * (dy[at + e] - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

void dropout_forward(int64_t n, int64_t first, float p, uint64_t key, const float* x, float* y) {
  const float scale = dropout_keep_scale(p);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * dropout_scale(key, first + i, p, scale);
}

void dropout_backward(int64_t n, int64_t first, float p, uint64_t key, const float* dy, float* dx) {
  const float scale = dropout_keep_scale(p);
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * dropout_scale(key, first + i, p, scale);
}

}  // namespace lenet::kernels
