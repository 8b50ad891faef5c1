// Max and average pooling, each channel plane on its own.
// x[N,C,H,W] -> y[N,C,OH,OW], OH = (H + 2·PH − KH) / SH + 1
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"
#include "lenet/parallel.h"

namespace lenet::kernels {

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

void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y, int32_t* argmax) {
  const int oh = g.oh(), ow = g.ow();
  const int planes = g.n * g.c;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int p = 0; p < planes; ++p) {
    const float* in = x + static_cast<int64_t>(p) * g.h * g.w;
    float* out = y + static_cast<int64_t>(p) * oh * ow;
    int32_t* arg = argmax + static_cast<int64_t>(p) * oh * ow;
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        float best = -std::numeric_limits<float>::infinity();
        int32_t where = r0 * g.w + c0;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) {
            float v = in[r * g.w + c];
            if (v > best) {  // first maximum wins, as in PyTorch
              best = v;
              where = r * g.w + c;
            }
          }
        out[i * ow + j] = best;
        arg[i * ow + j] = where;
      }
    }
  }
}

void maxpool2d_backward(const PoolGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t osz = static_cast<int64_t>(g.oh()) * g.ow(), isz = static_cast<int64_t>(g.h) * g.w;
  const int planes = g.n * g.c;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int p = 0; p < planes; ++p) {
    float* d = dx + p * isz;
    std::fill_n(d, isz, 0.0f);
    for (int64_t i = 0; i < osz; ++i) d[argmax[p * osz + i]] += dy[p * osz + i];
  }
}

void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y) {
  const int oh = g.oh(), ow = g.ow();
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  const int planes = g.n * g.c;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int p = 0; p < planes; ++p) {
    const float* in = x + static_cast<int64_t>(p) * g.h * g.w;
    float* out = y + static_cast<int64_t>(p) * oh * ow;
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        float sum = 0;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) sum += in[r * g.w + c];
        out[i * ow + j] = sum * scale;
      }
    }
  }
}

void avgpool2d_backward(const PoolGeometry& g, const float* dy, float* dx) {
  const int oh = g.oh(), ow = g.ow();
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  const int planes = g.n * g.c;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int p = 0; p < planes; ++p) {
    float* d = dx + static_cast<int64_t>(p) * g.h * g.w;
    const float* up = dy + static_cast<int64_t>(p) * oh * ow;
    std::fill_n(d, static_cast<int64_t>(g.h) * g.w, 0.0f);
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        const float v = up[i * ow + j] * scale;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) d[r * g.w + c] += v;
      }
    }
  }
}

}  // namespace lenet::kernels
