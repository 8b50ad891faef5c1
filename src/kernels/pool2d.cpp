// x[N,C,H,W] -> y[N,C,OH,OW], OH = (H + 2·PH − KH) / SH + 1; each channel plane on its own.
//
// LeNet's 2×2 windows with stride 2 and no padding take a vector path: two
// input rows, their even and odd columns split apart by shuffles, four
// candidates compared lane-wise in the reference's order (first maximum
// wins). Other geometries take the plain loops. Planes are split over threads
// when there are enough of them.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/fast.h"
#include "kernels/simd.h"
#include "lenet/kernels.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {

using simd::kLanes;
using simd::Mask;
using simd::vf;
using simd::vi32;

// Runs plane(p) for every plane of the batch, split over threads.
template <class Fn>
void for_each_plane(const PoolGeometry& g, Fn plane) {
  const int planes = g.n * g.c;
  const int threads = kernel_threads(static_cast<int64_t>(planes) * g.h * g.w, 1 << 16);
  if (threads == 1) {
    for (int p = 0; p < planes; ++p) plane(p);
    return;
  }
  parallel_run(threads, [&](int t, int team) {
    int64_t p0, p1;
    share(planes, t, team, p0, p1);
    for (int64_t p = p0; p < p1; ++p) plane(static_cast<int>(p));
  });
}

// The two input rows under output row i, as (even columns, odd columns) for
// outputs j0 .. j0 + kLanes − 1.
struct RowPair {
  vf top_even, top_odd, bottom_even, bottom_odd;
};
RowPair load_2x2(const float* in, int w, int i, int j0, int ow) {
  const int cols = 2 * std::min(kLanes, ow - j0);
  const Mask first(std::min(kLanes, cols)), second(std::max(0, cols - kLanes));
  const float* top = in + static_cast<int64_t>(2 * i) * w + 2 * j0;
  const float* bottom = top + w;
  const vf t0 = simd::load(top, first), t1 = simd::load(top + kLanes, second);
  const vf b0 = simd::load(bottom, first), b1 = simd::load(bottom + kLanes, second);
  return {simd::even(t0, t1), simd::odd(t0, t1), simd::even(b0, b1), simd::odd(b0, b1)};
}

void maxpool_2x2_plane(const PoolGeometry& g, const float* in, float* out, int32_t* arg) {
  const int oh = g.oh(), ow = g.ow();
  for (int i = 0; i < oh; ++i)
    for (int j0 = 0; j0 < ow; j0 += kLanes) {
      const Mask m(std::min(kLanes, ow - j0));
      const RowPair r = load_2x2(in, g.w, i, j0, ow);
      const vi32 base = 2 * i * g.w + 2 * (j0 + simd::lane_index());
      vf best = simd::splat(-std::numeric_limits<float>::infinity());
      vi32 where = base;
      auto take = [&](vf v, vi32 index) {
        const auto better = v > best;
        best = better ? v : best;
        where = better ? index : where;
      };
      take(r.top_even, base);
      take(r.top_odd, base + 1);
      take(r.bottom_even, base + g.w);
      take(r.bottom_odd, base + g.w + 1);
      simd::store(out + static_cast<int64_t>(i) * ow + j0, best, m);
      simd::store(arg + static_cast<int64_t>(i) * ow + j0, where, m);
    }
}

// Writes dx rows 2i and 2i + 1 from the (even, odd) column values of output row i.
void store_2x2(float* d, int w, int i, int j0, int ow, vf top_even, vf top_odd, vf bottom_even, vf bottom_odd) {
  const int cols = 2 * std::min(kLanes, ow - j0);
  const Mask first(std::min(kLanes, cols)), second(std::max(0, cols - kLanes));
  float* top = d + static_cast<int64_t>(2 * i) * w + 2 * j0;
  float* bottom = top + w;
  simd::store(top, simd::zip_low(top_even, top_odd), first);
  simd::store(top + kLanes, simd::zip_high(top_even, top_odd), second);
  simd::store(bottom, simd::zip_low(bottom_even, bottom_odd), first);
  simd::store(bottom + kLanes, simd::zip_high(bottom_even, bottom_odd), second);
}

// Cells no window covers (an odd last row or column) get no gradient.
void zero_uncovered(const PoolGeometry& g, float* d) {
  const int oh = g.oh(), ow = g.ow();
  for (int r = 0; r < 2 * oh; ++r) std::fill(d + static_cast<int64_t>(r) * g.w + 2 * ow, d + (r + 1) * g.w, 0.0f);
  std::fill(d + static_cast<int64_t>(2 * oh) * g.w, d + static_cast<int64_t>(g.h) * g.w, 0.0f);
}

}  // namespace

void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y, int32_t* argmax) {
  const int oh = g.oh(), ow = g.ow();
  const int64_t isz = static_cast<int64_t>(g.h) * g.w, osz = static_cast<int64_t>(oh) * ow;
  if (is_2x2_stride_2(g))
    return for_each_plane(g, [&](int p) { maxpool_2x2_plane(g, x + p * isz, y + p * osz, argmax + p * osz); });
  for_each_plane(g, [&](int p) {
    const float* in = x + p * isz;
    float* out = y + p * osz;
    int32_t* arg = argmax + p * osz;
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        float best = -std::numeric_limits<float>::infinity();
        int32_t where = r0 * g.w + c0;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) {
            const float v = in[r * g.w + c];
            if (v > best) {  // first maximum wins, as in PyTorch
              best = v;
              where = r * g.w + c;
            }
          }
        out[i * ow + j] = best;
        arg[i * ow + j] = where;
      }
    }
  });
}

void maxpool2d_backward(const PoolGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
  const int oh = g.oh(), ow = g.ow();
  const int64_t isz = static_cast<int64_t>(g.h) * g.w, osz = static_cast<int64_t>(oh) * ow;
  if (is_2x2_stride_2(g)) {
    // Windows do not overlap: each cell is its window's maximum or gets 0.
    return for_each_plane(g, [&](int p) {
      float* d = dx + p * isz;
      const float* up = dy + p * osz;
      const int32_t* arg = argmax + p * osz;
      for (int i = 0; i < oh; ++i)
        for (int j0 = 0; j0 < ow; j0 += kLanes) {
          const Mask m(std::min(kLanes, ow - j0));
          const vf v = simd::load(up + static_cast<int64_t>(i) * ow + j0, m);
          const vi32 where = simd::load(arg + static_cast<int64_t>(i) * ow + j0, m);
          const vi32 base = 2 * i * g.w + 2 * (j0 + simd::lane_index());
          const vf z = simd::zero();
          store_2x2(d, g.w, i, j0, ow, where == base ? v : z, where == base + 1 ? v : z, where == base + g.w ? v : z,
                    where == base + g.w + 1 ? v : z);
        }
      zero_uncovered(g, d);
    });
  }
  for_each_plane(g, [&](int p) {
    float* d = dx + p * isz;
    std::fill_n(d, isz, 0.0f);
    for (int64_t i = 0; i < osz; ++i) d[argmax[p * osz + i]] += dy[p * osz + i];
  });
}

void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y) {
  const int oh = g.oh(), ow = g.ow();
  const int64_t isz = static_cast<int64_t>(g.h) * g.w, osz = static_cast<int64_t>(oh) * ow;
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  if (is_2x2_stride_2(g)) {
    return for_each_plane(g, [&](int p) {
      const float* in = x + p * isz;
      float* out = y + p * osz;
      for (int i = 0; i < oh; ++i)
        for (int j0 = 0; j0 < ow; j0 += kLanes) {
          const RowPair r = load_2x2(in, g.w, i, j0, ow);
          // The reference's order: row by row, left to right.
          const vf sum = ((r.top_even + r.top_odd) + r.bottom_even) + r.bottom_odd;
          simd::store(out + static_cast<int64_t>(i) * ow + j0, sum * scale, Mask(std::min(kLanes, ow - j0)));
        }
    });
  }
  for_each_plane(g, [&](int p) {
    const float* in = x + p * isz;
    float* out = y + p * osz;
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
  });
}

void avgpool2d_backward(const PoolGeometry& g, const float* dy, float* dx) {
  const int oh = g.oh(), ow = g.ow();
  const int64_t isz = static_cast<int64_t>(g.h) * g.w, osz = static_cast<int64_t>(oh) * ow;
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  if (is_2x2_stride_2(g)) {
    return for_each_plane(g, [&](int p) {
      float* d = dx + p * isz;
      const float* up = dy + p * osz;
      for (int i = 0; i < oh; ++i)
        for (int j0 = 0; j0 < ow; j0 += kLanes) {
          const vf v = simd::load(up + static_cast<int64_t>(i) * ow + j0, Mask(std::min(kLanes, ow - j0))) * scale;
          store_2x2(d, g.w, i, j0, ow, v, v, v, v);
        }
      zero_uncovered(g, d);
    });
  }
  for_each_plane(g, [&](int p) {
    float* d = dx + p * isz;
    const float* up = dy + p * osz;
    std::fill_n(d, isz, 0.0f);
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        const float v = up[i * ow + j] * scale;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) d[r * g.w + c] += v;
      }
    }
  });
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
