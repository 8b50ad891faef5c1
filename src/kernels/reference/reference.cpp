// Plain nested loops, written to be read: the oracles for the fast kernels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "lenet/kernels.h"

namespace lenet::kernels::reference {

// The chapter's corr2d: Y[i, j] = Σ_a Σ_b X[i + a, j + b] · K[a, b]
void corr2d(int h, int w, const float* x, int kh, int kw, const float* k, float* y) {
  int oh = h - kh + 1, ow = w - kw + 1;
  for (int i = 0; i < oh; ++i)
    for (int j = 0; j < ow; ++j) {
      float sum = 0;
      for (int a = 0; a < kh; ++a)
        for (int b = 0; b < kw; ++b) sum += x[(i + a) * w + (j + b)] * k[a * kw + b];
      y[i * ow + j] = sum;
    }
}

// Input pixel under output (i, j) and kernel tap (a, b), or 0 in the padding.
static float padded(const ConvGeometry& g, const float* plane, int i, int j, int a, int b) {
  int r = i * g.sh - g.ph + a, c = j * g.sw - g.pw + b;
  if (r < 0 || r >= g.h || c < 0 || c >= g.w) return 0.0f;
  return plane[r * g.w + c];
}

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  int oh = g.oh(), ow = g.ow();
  for (int n = 0; n < g.n; ++n)
    for (int o = 0; o < g.o; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          double sum = b ? b[o] : 0.0;
          for (int c = 0; c < g.c; ++c) {
            const float* plane = x + (static_cast<int64_t>(n) * g.c + c) * g.h * g.w;
            const float* k = w + (static_cast<int64_t>(o) * g.c + c) * g.kh * g.kw;
            for (int a = 0; a < g.kh; ++a)
              for (int bb = 0; bb < g.kw; ++bb) sum += padded(g, plane, i, j, a, bb) * k[a * g.kw + bb];
          }
          y[((static_cast<int64_t>(n) * g.o + o) * oh + i) * ow + j] = static_cast<float>(sum);
        }
}

void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  int oh = g.oh(), ow = g.ow();
  if (dx) std::fill_n(dx, static_cast<int64_t>(g.n) * g.c * g.h * g.w, 0.0f);
  for (int n = 0; n < g.n; ++n)
    for (int o = 0; o < g.o; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          float d = dy[((static_cast<int64_t>(n) * g.o + o) * oh + i) * ow + j];
          if (db) db[o] += d;
          for (int c = 0; c < g.c; ++c)
            for (int a = 0; a < g.kh; ++a)
              for (int bb = 0; bb < g.kw; ++bb) {
                int r = i * g.sh - g.ph + a, col = j * g.sw - g.pw + bb;
                if (r < 0 || r >= g.h || col < 0 || col >= g.w) continue;
                int64_t xi = ((static_cast<int64_t>(n) * g.c + c) * g.h + r) * g.w + col;
                int64_t wi = ((static_cast<int64_t>(o) * g.c + c) * g.kh + a) * g.kw + bb;
                dw[wi] += d * x[xi];
                if (dx) dx[xi] += d * w[wi];
              }
        }
}

// The chapter's pool2d with padding and stride. Max ignores padded cells;
// average divides by the full window (padded zeros count).
template <bool Max>
static void pool2d(const PoolGeometry& g, const float* x, float* y) {
  int oh = g.oh(), ow = g.ow();
  for (int p = 0; p < g.n * g.c; ++p) {
    const float* plane = x + static_cast<int64_t>(p) * g.h * g.w;
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        float acc = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
        for (int a = 0; a < g.kh; ++a)
          for (int b = 0; b < g.kw; ++b) {
            int r = i * g.sh - g.ph + a, c = j * g.sw - g.pw + b;
            if (r < 0 || r >= g.h || c < 0 || c >= g.w) continue;
            float v = plane[r * g.w + c];
            acc = Max ? std::max(acc, v) : acc + v;
          }
        y[(static_cast<int64_t>(p) * oh + i) * ow + j] = Max ? acc : acc / static_cast<float>(g.kh * g.kw);
      }
  }
}

void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y) { pool2d<true>(g, x, y); }
void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y) { pool2d<false>(g, x, y); }

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      double sum = b ? b[o] : 0.0;
      for (int i = 0; i < in; ++i) sum += x[static_cast<int64_t>(r) * in + i] * w[static_cast<int64_t>(o) * in + i];
      y[static_cast<int64_t>(r) * out + o] = static_cast<float>(sum);
    }
}

}  // namespace lenet::kernels::reference

namespace lenet::kernels::reference {

// PyTorch's BatchNorm in training, in double: per channel over N·P values,
// mean μ, biased variance σ², y = w·(x − μ)/sqrt(σ² + eps) + b.
void batchnorm_forward_train(int n, int c, int64_t plane, const float* x, const float* weight, const float* bias,
                             double eps, float* y, double* mean, double* var) {
  const double m = static_cast<double>(n) * static_cast<double>(plane);
  for (int ch = 0; ch < c; ++ch) {
    double mu = 0;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) mu += x[(static_cast<int64_t>(i) * c + ch) * plane + e];
    mu /= m;
    double s2 = 0;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) {
        const double d = x[(static_cast<int64_t>(i) * c + ch) * plane + e] - mu;
        s2 += d * d;
      }
    s2 /= m;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) {
        const int64_t at = (static_cast<int64_t>(i) * c + ch) * plane + e;
        y[at] = static_cast<float>(weight[ch] * (x[at] - mu) / std::sqrt(s2 + eps) + bias[ch]);
      }
    mean[ch] = mu;
    var[ch] = s2;
  }
}

// The textbook backward of the above: with x̂ = (x − μ)/σ̂, σ̂ = sqrt(σ² + eps),
// dx = w/σ̂ · (dy − mean(dy) − x̂ · mean(dy · x̂)), dw = Σ dy · x̂, db = Σ dy.
void batchnorm_backward_train(int n, int c, int64_t plane, const float* x, const float* weight, const float* dy,
                              double eps, float* dx, float* dweight, float* dbias) {
  const double m = static_cast<double>(n) * static_cast<double>(plane);
  for (int ch = 0; ch < c; ++ch) {
    auto at = [&](int i, int64_t e) { return (static_cast<int64_t>(i) * c + ch) * plane + e; };
    double mu = 0, s2 = 0;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) mu += x[at(i, e)];
    mu /= m;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) s2 += (x[at(i, e)] - mu) * (x[at(i, e)] - mu);
    s2 /= m;
    const double sigma = std::sqrt(s2 + eps);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) {
        sum_dy += dy[at(i, e)];
        sum_dy_xhat += dy[at(i, e)] * (x[at(i, e)] - mu) / sigma;
      }
    for (int i = 0; i < n; ++i)
      for (int64_t e = 0; e < plane; ++e) {
        const double xhat = (x[at(i, e)] - mu) / sigma;
        dx[at(i, e)] = static_cast<float>(weight[ch] / sigma * (dy[at(i, e)] - sum_dy / m - xhat * sum_dy_xhat / m));
      }
    dweight[ch] = static_cast<float>(sum_dy_xhat);
    dbias[ch] = static_cast<float>(sum_dy);
  }
}

}  // namespace lenet::kernels::reference
