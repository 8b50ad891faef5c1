// Pooling, activations and border changes on blocks of kLanes images held
// batch-in-the-lanes ([C][H][W][kLanes]): every operation is lane-wise, so any
// window geometry vectorises fully. See blocked.h.
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/activation_simd.h"
#include "kernels/blocked.h"
#include "kernels/fast.h"
#include "kernels/simd.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::blocked {

namespace {
using simd::kLanes;
using simd::vf;
using simd::vi32;

inline const float* at(const float* b, int64_t pixel) { return b + pixel * kLanes; }
inline float* at(float* b, int64_t pixel) { return b + pixel * kLanes; }
}  // namespace

void add_border(const float* xb, int c_count, int h, int w, int ph, int pw, float* padded) {
  const int hp = h + 2 * ph, wp = w + 2 * pw;
  std::fill_n(padded, static_cast<int64_t>(c_count) * hp * wp * kLanes, 0.0f);
  for (int c = 0; c < c_count; ++c)
    for (int r = 0; r < h; ++r)
      std::copy_n(at(xb, (static_cast<int64_t>(c) * h + r) * w), static_cast<int64_t>(w) * kLanes,
                  at(padded, (static_cast<int64_t>(c) * hp + r + ph) * wp + pw));
}

void remove_border(const float* padded, int c_count, int h, int w, int ph, int pw, float* xb) {
  const int hp = h + 2 * ph, wp = w + 2 * pw;
  for (int c = 0; c < c_count; ++c)
    for (int r = 0; r < h; ++r)
      std::copy_n(at(padded, (static_cast<int64_t>(c) * hp + r + ph) * wp + pw), static_cast<int64_t>(w) * kLanes,
                  at(xb, (static_cast<int64_t>(c) * h + r) * w));
}

void activation_forward(Act act, int64_t n, const float* x, float* y) {
  // A tail (rows, not a block buffer) goes through the same vector code.
  for (int64_t i = 0; i < n; i += kLanes) {
    const int m = static_cast<int>(std::min<int64_t>(kLanes, n - i));
    const vf v = simd::load_partial(x + i, m);
    switch (act) {
      case Act::None: simd::store_partial(y + i, v, m); break;
      case Act::Sigmoid: simd::store_partial(y + i, simd::sigmoid(v), m); break;
      case Act::ReLU: simd::store_partial(y + i, simd::relu(v), m); break;
      case Act::Tanh: simd::store_partial(y + i, simd::tanh(v), m); break;
    }
  }
}

void activation_backward(Act act, int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const int m = static_cast<int>(std::min<int64_t>(kLanes, n - i));
    const vf v = simd::load_partial(y + i, m), d = simd::load_partial(dy + i, m);
    switch (act) {
      case Act::None: simd::store_partial(dx + i, d, m); break;
      case Act::Sigmoid: simd::store_partial(dx + i, d * (v * (1.0f - v)), m); break;
      case Act::ReLU: simd::store_partial(dx + i, v > 0.0f ? d : simd::zero(), m); break;
      case Act::Tanh: simd::store_partial(dx + i, d * (1.0f - v * v), m); break;
    }
  }
}

namespace {
// The window of output (i, j) clipped to the input: rows [r0, r1), columns [c0, c1).
struct Window {
  int r0, r1, c0, c1, top, left;  // top/left: the unclipped corner
};
Window window(const PoolGeometry& g, int i, int j) {
  Window w;
  w.top = i * g.sh - g.ph;
  w.left = j * g.sw - g.pw;
  w.r0 = std::max(w.top, 0);
  w.r1 = std::min(w.top + g.kh, g.h);
  w.c0 = std::max(w.left, 0);
  w.c1 = std::min(w.left + g.kw, g.w);
  return w;
}
}  // namespace

namespace {
// LeNet's 2×2 windows with stride 2 and no padding, unrolled.
void maxpool_forward_2x2(const PoolGeometry& g, const float* xb, float* yb, int32_t* code) {
  const int oh = g.oh(), ow = g.ow();
  const vf lowest = simd::splat(-std::numeric_limits<float>::infinity());
  for (int c = 0; c < g.c; ++c) {
    const float* in = at(xb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const float* top = at(in, static_cast<int64_t>(2 * i) * g.w + 2 * j);
        const vf v[4] = {simd::load(top), simd::load(top + kLanes), simd::load(at(top, g.w)),
                         simd::load(at(top, g.w) + kLanes)};
        vf best = lowest;
        vi32 where = vi32{};
        for (int k = 0; k < 4; ++k) {  // first maximum wins
          const auto better = v[k] > best;
          best = better ? v[k] : best;
          where = better ? vi32{} + k : where;
        }
        const int64_t o = (static_cast<int64_t>(c) * oh + i) * ow + j;
        simd::store(at(yb, o), best);
        std::memcpy(code + o * kLanes, &where, sizeof where);
      }
  }
}
}  // namespace

void maxpool_forward(const PoolGeometry& g, const float* xb, float* yb, int32_t* code) {
  if (g.kh == 2 && g.kw == 2 && tiles_input(g)) return maxpool_forward_2x2(g, xb, yb, code);
  const int oh = g.oh(), ow = g.ow();
  for (int c = 0; c < g.c; ++c) {
    const float* in = at(xb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const Window w = window(g, i, j);
        vf best = simd::splat(-std::numeric_limits<float>::infinity());
        vi32 where = vi32{} + ((w.r0 - w.top) * g.kw + (w.c0 - w.left));
        for (int r = w.r0; r < w.r1; ++r)
          for (int s = w.c0; s < w.c1; ++s) {
            const vf v = simd::load(at(in, static_cast<int64_t>(r) * g.w + s));
            const auto better = v > best;  // first maximum wins
            best = better ? v : best;
            where = better ? vi32{} + ((r - w.top) * g.kw + (s - w.left)) : where;
          }
        const int64_t o = (static_cast<int64_t>(c) * oh + i) * ow + j;
        simd::store(at(yb, o), best);
        std::memcpy(code + o * kLanes, &where, sizeof where);
      }
  }
}

void maxpool_backward(const PoolGeometry& g, const float* dyb, const int32_t* code, float* dxb) {
  const int oh = g.oh(), ow = g.ow();
  std::fill_n(dxb, static_cast<int64_t>(g.c) * g.h * g.w * kLanes, 0.0f);
  for (int c = 0; c < g.c; ++c) {
    float* d = at(dxb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const Window w = window(g, i, j);
        const int64_t o = (static_cast<int64_t>(c) * oh + i) * ow + j;
        const vf up = simd::load(at(dyb, o));
        vi32 where;
        std::memcpy(&where, code + o * kLanes, sizeof where);
        for (int r = w.r0; r < w.r1; ++r)
          for (int s = w.c0; s < w.c1; ++s) {
            float* p = at(d, static_cast<int64_t>(r) * g.w + s);
            const vi32 cell = vi32{} + ((r - w.top) * g.kw + (s - w.left));
            simd::store(p, simd::load(p) + (where == cell ? up : simd::zero()));
          }
      }
  }
}

bool tiles_input(const PoolGeometry& g) { return g.sh == g.kh && g.sw == g.kw && g.ph == 0 && g.pw == 0; }

namespace {
// f'(y) from y = f(z)
inline vf derivative(Act act, vf y) {
  switch (act) {
    case Act::None: return simd::splat(1.0f);
    case Act::Sigmoid: return y * (1.0f - y);
    case Act::ReLU: return y > 0.0f ? simd::splat(1.0f) : simd::zero();
    case Act::Tanh: return 1.0f - y * y;
  }
  return simd::splat(1.0f);
}
}  // namespace

namespace {
// KH, KW: the window when known at compile time (LeNet's 2×2), else 0.
template <int KH, int KW>
void maxpool_backward_through_impl(Act act, const PoolGeometry& g, const float* dyb, const int32_t* code,
                                   const float* pooled, float* dzb) {
  const int oh = g.oh(), ow = g.ow();
  const int kh = KH ? KH : g.kh, kw = KW ? KW : g.kw;
  for (int c = 0; c < g.c; ++c) {
    float* d = at(dzb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const int64_t o = (static_cast<int64_t>(c) * oh + i) * ow + j;
        const vf up = simd::load(at(dyb, o));
        // The same product as activation_backward(max pool backward): dy · f'(y).
        const vf grad = act == Act::ReLU ? (simd::load(at(pooled, o)) > 0.0f ? up : simd::zero())
                                         : up * derivative(act, simd::load(at(pooled, o)));
        vi32 where;
        std::memcpy(&where, code + o * kLanes, sizeof where);
        for (int a = 0; a < kh; ++a)
          for (int b = 0; b < kw; ++b) {
            const vi32 cell = vi32{} + (a * kw + b);
            simd::store(at(d, static_cast<int64_t>(i * kh + a) * g.w + j * kw + b),
                        where == cell ? grad : simd::zero());
          }
      }
    // Rows and columns past the last whole window get no gradient.
    for (int r = 0; r < g.h; ++r) {
      const int from = r < oh * kh ? ow * kw : 0;
      std::fill(at(d, static_cast<int64_t>(r) * g.w + from), at(d, static_cast<int64_t>(r + 1) * g.w), 0.0f);
    }
  }
}
}  // namespace

void maxpool_backward_through(Act act, const PoolGeometry& g, const float* dyb, const int32_t* code,
                              const float* pooled, float* dzb) {
  if (g.kh == 2 && g.kw == 2) return maxpool_backward_through_impl<2, 2>(act, g, dyb, code, pooled, dzb);
  maxpool_backward_through_impl<0, 0>(act, g, dyb, code, pooled, dzb);
}

void avgpool_forward(const PoolGeometry& g, const float* xb, float* yb) {
  const int oh = g.oh(), ow = g.ow();
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  for (int c = 0; c < g.c; ++c) {
    const float* in = at(xb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const Window w = window(g, i, j);
        vf sum = simd::zero();  // the reference's order: row by row, left to right
        for (int r = w.r0; r < w.r1; ++r)
          for (int s = w.c0; s < w.c1; ++s) sum += simd::load(at(in, static_cast<int64_t>(r) * g.w + s));
        simd::store(at(yb, (static_cast<int64_t>(c) * oh + i) * ow + j), sum * scale);
      }
  }
}

void avgpool_backward(const PoolGeometry& g, const float* dyb, float* dxb) {
  const int oh = g.oh(), ow = g.ow();
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  std::fill_n(dxb, static_cast<int64_t>(g.c) * g.h * g.w * kLanes, 0.0f);
  for (int c = 0; c < g.c; ++c) {
    float* d = at(dxb, static_cast<int64_t>(c) * g.h * g.w);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        const Window w = window(g, i, j);
        const vf v = simd::load(at(dyb, (static_cast<int64_t>(c) * oh + i) * ow + j)) * scale;
        for (int r = w.r0; r < w.r1; ++r)
          for (int s = w.c0; s < w.c1; ++s) {
            float* p = at(d, static_cast<int64_t>(r) * g.w + s);
            simd::store(p, simd::load(p) + v);
          }
      }
  }
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::blocked
