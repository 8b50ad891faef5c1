// 2-D cross-correlation as im2col + sgemm, parallel over the batch.
// x[N,C,H,W] ⋆ w[O,C,KH,KW] + b[O] -> y[N,O,OH,OW]
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/parallel.h"

namespace lenet::kernels {

void ConvGeometry::validate(const std::string& op) const {
  auto sizes = [&] {
    return "input " + std::to_string(h) + "x" + std::to_string(w) + ", kernel " + std::to_string(kh) + "x" +
           std::to_string(kw) + ", padding " + std::to_string(ph) + "x" + std::to_string(pw) + ", stride " +
           std::to_string(sh) + "x" + std::to_string(sw);
  };
  if (n < 1 || c < 1 || h < 1 || w < 1 || o < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
    throw std::invalid_argument(op + ": sizes must be positive (padding non-negative): channels " +
                                std::to_string(c) + "->" + std::to_string(o) + ", " + sizes());
  if (kh > h + 2 * ph || kw > w + 2 * pw)
    throw std::invalid_argument(op + ": kernel larger than the padded input: " + sizes());
}

namespace {

// col[(c·KH + a)·KW + b, i·OW + j] = x[c, i·SH − PH + a, j·SW − PW + b] (0 in the padding)
void im2col(const ConvGeometry& g, const float* x, float* col) {
  const int oh = g.oh(), ow = g.ow();
  for (int c = 0; c < g.c; ++c)
    for (int a = 0; a < g.kh; ++a)
      for (int b = 0; b < g.kw; ++b) {
        float* row = col + ((static_cast<int64_t>(c) * g.kh + a) * g.kw + b) * oh * ow;
        const float* plane = x + static_cast<int64_t>(c) * g.h * g.w;
        for (int i = 0; i < oh; ++i) {
          int r = i * g.sh - g.ph + a;
          float* out = row + i * ow;
          if (r < 0 || r >= g.h) {
            std::fill_n(out, ow, 0.0f);
            continue;
          }
          const float* in = plane + r * g.w;
          for (int j = 0; j < ow; ++j) {
            int cc = j * g.sw - g.pw + b;
            out[j] = (cc >= 0 && cc < g.w) ? in[cc] : 0.0f;
          }
        }
      }
}

// The adjoint of im2col: scatter-add columns back into the image (dx zeroed first).
void col2im(const ConvGeometry& g, const float* col, float* x) {
  const int oh = g.oh(), ow = g.ow();
  std::fill_n(x, static_cast<int64_t>(g.c) * g.h * g.w, 0.0f);
  for (int c = 0; c < g.c; ++c)
    for (int a = 0; a < g.kh; ++a)
      for (int b = 0; b < g.kw; ++b) {
        const float* row = col + ((static_cast<int64_t>(c) * g.kh + a) * g.kw + b) * oh * ow;
        float* plane = x + static_cast<int64_t>(c) * g.h * g.w;
        for (int i = 0; i < oh; ++i) {
          int r = i * g.sh - g.ph + a;
          if (r < 0 || r >= g.h) continue;
          float* out = plane + r * g.w;
          const float* in = row + i * ow;
          for (int j = 0; j < ow; ++j) {
            int cc = j * g.sw - g.pw + b;
            if (cc >= 0 && cc < g.w) out[cc] += in[j];
          }
        }
      }
}

bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Per-thread scratch that grows and is kept.
std::vector<float>& scratch(int slot, size_t n) {
  thread_local std::vector<float> buffers[2];
  if (buffers[slot].size() < n) buffers[slot].resize(n);
  return buffers[slot];
}

}  // namespace

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  const int p = g.oh() * g.ow();
  const int k = g.c * g.kh * g.kw;
  const int64_t in_size = static_cast<int64_t>(g.c) * g.h * g.w, out_size = static_cast<int64_t>(g.o) * p;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int n = 0; n < g.n; ++n) {
    const float* col = x + n * in_size;
    if (!is_pointwise(g)) {
      float* buf = scratch(0, static_cast<size_t>(k) * p).data();
      im2col(g, x + n * in_size, buf);
      col = buf;
    }
    float* out = y + n * out_size;
    for (int o = 0; o < g.o; ++o) std::fill_n(out + static_cast<int64_t>(o) * p, p, b ? b[o] : 0.0f);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.o, p, k, 1.0f, w, k, col, p, 1.0f, out, p);
  }
}

void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db) {
  const int p = g.oh() * g.ow();
  const int k = g.c * g.kh * g.kw;
  const int64_t in_size = static_cast<int64_t>(g.c) * g.h * g.w, out_size = static_cast<int64_t>(g.o) * p;
  const int threads = std::min(num_threads(), g.n);
  const int64_t wsize = static_cast<int64_t>(g.o) * k;
  // Each thread sums its samples' weight gradients privately; the partial sums
  // are then added in thread order, so results do not depend on timing.
  std::vector<float> partial(static_cast<size_t>(threads) * (wsize + g.o), 0.0f);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* my_dw = partial.data() + t * (wsize + g.o);
    float* my_db = my_dw + wsize;
#pragma omp for schedule(static)
    for (int n = 0; n < g.n; ++n) {
      const float* col = x + n * in_size;
      if (!is_pointwise(g)) {
        float* buf = scratch(0, static_cast<size_t>(k) * p).data();
        im2col(g, x + n * in_size, buf);
        col = buf;
      }
      const float* d = dy + n * out_size;
      // dW[O,K] += dY[O,P] · colᵀ[P,K]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.o, k, p, 1.0f, d, p, col, p, 1.0f, my_dw, k);
      for (int o = 0; o < g.o; ++o) {
        float s = 0;
        for (int i = 0; i < p; ++i) s += d[static_cast<int64_t>(o) * p + i];
        my_db[o] += s;
      }
      if (dx) {
        // dcol[K,P] = Wᵀ[K,O] · dY[O,P], then scattered back to the image.
        if (is_pointwise(g)) {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, g.o, 1.0f, w, k, d, p, 0.0f, dx + n * in_size, p);
        } else {
          float* dcol = scratch(1, static_cast<size_t>(k) * p).data();
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, g.o, 1.0f, w, k, d, p, 0.0f, dcol, p);
          col2im(g, dcol, dx + n * in_size);
        }
      }
    }
  }
  for (int t = 0; t < threads; ++t) {
    const float* pdw = partial.data() + t * (wsize + g.o);
    for (int64_t i = 0; i < wsize; ++i) dw[i] += pdw[i];
    if (db)
      for (int o = 0; o < g.o; ++o) db[o] += pdw[wsize + o];
  }
}

}  // namespace lenet::kernels
