// x[N,C,H,W] ⋆ w[O,C,KH,KW] + b[O] -> y[N,O,OH,OW], OH = (H + 2·PH − KH) / SH + 1
//
// Batch in the lanes: images are taken kLanes at a time (a "block") and
// transposed so that one vector holds the same pixel of kLanes images,
// xb[C][H+2PH][W+2PW][kLanes] with the zero padding written out. Every
// multiply-add then uses all lanes whatever the channel counts and the
// geometry (LeNet's 1 -> 6 and 6 -> 16 channels would fill a third of a vector
// at best when vectorising over channels), weights are broadcast, and no
// position needs a bounds check. Blocks are split statically over the threads;
// each thread sums its weight gradients in lane-wide private accumulators that
// are added in thread order once per call, so a run is reproducible bit for bit
// for a given thread count.
//
// Register tiles (output channels × output columns in forward, output channels
// × kernel taps for the weight gradient, output columns × kernel taps for the
// input gradient) are chosen per shape by a small cost model of the loads and
// multiply-adds per step.
//
// A forward pass of a few images (single-image latency) takes the direct
// per-image kernels of conv_direct.cpp instead: a block would be mostly empty.
#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/activation_simd.h"
#include "kernels/blocked.h"
#include "kernels/conv_direct.h"
#include "kernels/fast.h"
#include "kernels/simd.h"
#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "lenet/tensor.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace blocked {

using simd::kLanes;
using simd::vf;

namespace {

using simd::kMaxAcc;
constexpr int kMaxTile = 8;

// ---- register tiles ----

// acc[t][u] = b[o0+t] + Σ_k w[o0+t][k] · x[position u + tap k]
template <int TO, int TJ>
void forward_tile(const float* xb, const int64_t* off, int k_count, const float* w, const float* b, int64_t x_step,
                  float* yb, int64_t y_ostride) {
  vf acc[TO][TJ];
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t) {
    const vf init = b ? simd::splat(b[t]) : simd::zero();
#pragma GCC unroll 8
    for (int u = 0; u < TJ; ++u) acc[t][u] = init;
  }
  for (int k = 0; k < k_count; ++k) {
    const float* xk = xb + off[k];
    vf xv[TJ];
#pragma GCC unroll 8
    for (int u = 0; u < TJ; ++u) xv[u] = simd::load(xk + u * x_step);
#pragma GCC unroll 8
    for (int t = 0; t < TO; ++t) {
      const vf wv = simd::splat(w[static_cast<int64_t>(t) * k_count + k]);
#pragma GCC unroll 8
      for (int u = 0; u < TJ; ++u) acc[t][u] = simd::fmadd(wv, xv[u], acc[t][u]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < TJ; ++u) simd::store(yb + t * y_ostride + u * kLanes, acc[t][u]);
}

// dw[o0+t][k0+u] (lane-wide) += Σ_positions dy[o0+t][p] · x[p + tap k0+u]
template <int TO, int TK>
void weight_grad_tile(const float* xb, const float* dyb, const int64_t* off, const ConvGeometry& g, int64_t x_row,
                      int64_t x_col, int64_t dy_ostride, float* dwacc, int k_count) {
  vf acc[TO][TK];
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < TK; ++u) acc[t][u] = simd::zero();
  int64_t offs[TK];
#pragma GCC unroll 8
  for (int u = 0; u < TK; ++u) offs[u] = off[u];
  const int oh = g.oh(), ow = g.ow();
  const float* dp = dyb;
  for (int i = 0; i < oh; ++i) {
    const float* xrow = xb + i * x_row;
    for (int j = 0; j < ow; ++j, dp += kLanes) {
      const float* xp = xrow + j * x_col;
      vf xv[TK], dv[TO];
#pragma GCC unroll 8
      for (int u = 0; u < TK; ++u) xv[u] = simd::load(xp + offs[u]);
#pragma GCC unroll 8
      for (int t = 0; t < TO; ++t) dv[t] = simd::load(dp + t * dy_ostride);
#pragma GCC unroll 8
      for (int t = 0; t < TO; ++t)
#pragma GCC unroll 8
        for (int u = 0; u < TK; ++u) acc[t][u] = simd::fmadd(dv[t], xv[u], acc[t][u]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < TK; ++u) {
      float* d = dwacc + (static_cast<int64_t>(t) * k_count + u) * kLanes;
      simd::store(d, simd::load(d) + acc[t][u]);
    }
}

// dx[position u + tap k0+t] += Σ_o w[o][k0+t] · dy[o][position u]
template <int TJ, int TK>
void input_grad_tile(float* dxb, const float* dyb, const float* w, const int64_t* off, int o_count, int k_count,
                     int64_t dy_ostride, int64_t x_col) {
  vf acc[TJ][TK];
#pragma GCC unroll 8
  for (int u = 0; u < TJ; ++u)
#pragma GCC unroll 8
    for (int t = 0; t < TK; ++t) acc[u][t] = simd::zero();
  for (int o = 0; o < o_count; ++o) {
    vf dv[TJ];
#pragma GCC unroll 8
    for (int u = 0; u < TJ; ++u) dv[u] = simd::load(dyb + o * dy_ostride + u * kLanes);
#pragma GCC unroll 8
    for (int t = 0; t < TK; ++t) {
      const vf wv = simd::splat(w[static_cast<int64_t>(o) * k_count + t]);
#pragma GCC unroll 8
      for (int u = 0; u < TJ; ++u) acc[u][t] = simd::fmadd(wv, dv[u], acc[u][t]);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < TJ; ++u)
#pragma GCC unroll 8
    for (int t = 0; t < TK; ++t) {
      float* d = dxb + u * x_col + off[t];
      simd::store(d, simd::load(d) + acc[u][t]);
    }
}

// Tables of the tile instantiations: entry (a − 1)·kMaxTile + (b − 1) holds
// the tile a × b, or null where a·b exceeds the register budget.
template <template <int, int> class Tile, size_t... I>
constexpr auto make_table(std::index_sequence<I...>) {
  using Fn = decltype(&Tile<1, 1>::run);
  return std::array<Fn, sizeof...(I)>{Tile<int(I) / kMaxTile + 1, int(I) % kMaxTile + 1>::get()...};
}

template <int A, int B>
struct ForwardTile {
  static void run(const float* xb, const int64_t* off, int k, const float* w, const float* b, int64_t xs, float* yb,
                  int64_t ys) {
    forward_tile<A, B>(xb, off, k, w, b, xs, yb, ys);
  }
  static constexpr auto get() {
    if constexpr (A * B <= kMaxAcc)
      return &run;
    else
      return static_cast<decltype(&run)>(nullptr);
  }
};
template <int A, int B>
struct WeightGradTile {
  static void run(const float* xb, const float* dyb, const int64_t* off, const ConvGeometry& g, int64_t xr, int64_t xc,
                  int64_t ds, float* dw, int k) {
    weight_grad_tile<A, B>(xb, dyb, off, g, xr, xc, ds, dw, k);
  }
  static constexpr auto get() {
    if constexpr (A * B <= kMaxAcc)
      return &run;
    else
      return static_cast<decltype(&run)>(nullptr);
  }
};
template <int A, int B>
struct InputGradTile {
  static void run(float* dxb, const float* dyb, const float* w, const int64_t* off, int o, int k, int64_t ds,
                  int64_t xc) {
    input_grad_tile<A, B>(dxb, dyb, w, off, o, k, ds, xc);
  }
  static constexpr auto get() {
    if constexpr (A * B <= kMaxAcc)
      return &run;
    else
      return static_cast<decltype(&run)>(nullptr);
  }
};

constexpr auto kForwardTiles = make_table<ForwardTile>(std::make_index_sequence<kMaxTile * kMaxTile>{});
constexpr auto kWeightGradTiles = make_table<WeightGradTile>(std::make_index_sequence<kMaxTile * kMaxTile>{});
constexpr auto kInputGradTiles = make_table<InputGradTile>(std::make_index_sequence<kMaxTile * kMaxTile>{});

// Cycles per inner step of an a × b tile: two multiply-adds and two loads per
// cycle, and at least 4 cycles (the FMA latency with too few accumulators);
// among tiles equally fast by that count, fewer loads per multiply-add win
// (operands come from L2 more often than the count assumes).
double step_cost(int a, int b) { return std::max({a * b / 2.0, (a + b) / 2.0, 4.0}) + 0.1 * (a + b) / 2.0; }

struct Tiling {
  int a = 1, b = 1;
};

// Splits extents (na, nb) into tiles of at most (a, b), the tails taking what
// is left, and picks the (a, b) of least estimated cost.
Tiling choose_tiling(int na, int nb) {
  Tiling best;
  double best_cost = 1e300;
  for (int a = 1; a <= std::min(na, kMaxTile); ++a) {
    const int b = std::min({nb, kMaxTile, kMaxAcc / a});
    const int fa = na / a, ra = na % a, fb = nb / b, rb = nb % b;
    double cost = fa * fb * step_cost(a, b);
    if (rb) cost += fa * step_cost(a, rb);
    if (ra) cost += fb * step_cost(ra, b);
    if (ra && rb) cost += step_cost(ra, rb);
    if (cost < best_cost - 1e-9) {
      best_cost = cost;
      best = {a, b};
    }
  }
  return best;
}

int table_index(int a, int b) { return (a - 1) * kMaxTile + (b - 1); }

}  // namespace

// ---- layout changes ----

void pack(const float* x, int n_valid, int c_count, int h, int w, int ph, int pw, float* xb) {
  const int hp = h + 2 * ph, wp = w + 2 * pw;
  const int64_t plane = static_cast<int64_t>(h) * w, image = plane * c_count;
  for (int c = 0; c < c_count; ++c) {
    float* xc = xb + static_cast<int64_t>(c) * hp * wp * kLanes;
    // The zero border.
    for (int r = 0; r < hp; ++r) {
      float* row = xc + static_cast<int64_t>(r) * wp * kLanes;
      if (r < ph || r >= ph + h) {
        std::fill_n(row, static_cast<int64_t>(wp) * kLanes, 0.0f);
      } else {
        std::fill_n(row, static_cast<int64_t>(pw) * kLanes, 0.0f);
        std::fill_n(row + static_cast<int64_t>(pw + w) * kLanes, static_cast<int64_t>(pw) * kLanes, 0.0f);
      }
    }
    for (int r = 0; r < h; ++r) {
      float* row = xc + (static_cast<int64_t>(r + ph) * wp + pw) * kLanes;
      const int64_t src = c * plane + static_cast<int64_t>(r) * w;
      for (int s0 = 0; s0 < w; s0 += kLanes) {
        const int m = std::min(kLanes, w - s0);
        // A full load may run past this row, never past this image.
        const bool full = src + s0 + kLanes <= image;
        vf v[kLanes];
        for (int l = 0; l < kLanes; ++l) {
          const float* p = x + l * image + src + s0;
          v[l] = l >= n_valid ? simd::zero() : full ? simd::load(p) : simd::load_partial(p, m);
        }
        simd::transpose(v);
        for (int k = 0; k < m; ++k) simd::store(row + static_cast<int64_t>(s0 + k) * kLanes, v[k]);
      }
    }
  }
}

void unpack(const float* xb, int n_valid, int c_count, int h, int w, int ph, int pw, float* x) {
  const int hp = h + 2 * ph, wp = w + 2 * pw;
  const int64_t plane = static_cast<int64_t>(h) * w, image = plane * c_count;
  // Without padding the positions of all channels are one run.
  const bool flat = ph == 0 && pw == 0;
  const int rows = flat ? 1 : c_count * h;
  const int64_t run = flat ? image : w;
  for (int q = 0; q < rows; ++q) {
    const int c = flat ? 0 : q / h, r = flat ? 0 : q % h;
    const float* row = xb + (static_cast<int64_t>(c) * hp * wp + static_cast<int64_t>(r + ph) * wp + pw) * kLanes;
    const int64_t dst = flat ? 0 : c * plane + static_cast<int64_t>(r) * w;
    for (int64_t s0 = 0; s0 < run; s0 += kLanes) {
      const int m = static_cast<int>(std::min<int64_t>(kLanes, run - s0));
      vf v[kLanes];
      for (int k = 0; k < kLanes; ++k) v[k] = k < m ? simd::load(row + (s0 + k) * kLanes) : simd::zero();
      simd::transpose(v);
      for (int l = 0; l < n_valid; ++l) simd::store_partial(x + l * image + dst + s0, v[l], m);
    }
  }
}

// ---- one block of kLanes images ----

Plan::Plan(const ConvGeometry& geometry) : g(geometry) {
  hp = g.h + 2 * g.ph;
  wp = g.w + 2 * g.pw;
  k_count = g.c * g.kh * g.kw;
  tap_offset.resize(static_cast<size_t>(k_count));
  for (int c = 0, k = 0; c < g.c; ++c)
    for (int a = 0; a < g.kh; ++a)
      for (int b = 0; b < g.kw; ++b, ++k)
        tap_offset[static_cast<size_t>(k)] = ((static_cast<int64_t>(c) * hp + a) * wp + b) * kLanes;
  const Tiling f = choose_tiling(g.o, g.ow());
  fwd_o = f.a;
  fwd_j = f.b;
  const Tiling wg = choose_tiling(g.o, k_count);
  wgrad_o = wg.a;
  wgrad_k = wg.b;
  const Tiling ig = choose_tiling(g.ow(), k_count);
  igrad_j = ig.a;
  igrad_k = ig.b;
}

int64_t Plan::input_block_size() const { return static_cast<int64_t>(g.c) * hp * wp * kLanes; }
int64_t Plan::output_block_size() const { return static_cast<int64_t>(g.o) * g.oh() * g.ow() * kLanes; }
int64_t Plan::weight_size() const { return static_cast<int64_t>(g.o) * k_count; }

void Plan::forward(const float* xb, const float* w, const float* b, float* yb, Act act) const {
  const int oh = g.oh(), ow = g.ow();
  const int64_t y_ostride = static_cast<int64_t>(oh) * ow * kLanes;
  const int64_t x_step = static_cast<int64_t>(g.sw) * kLanes;
  for (int o0 = 0; o0 < g.o; o0 += fwd_o) {
    const int to = std::min(fwd_o, g.o - o0);
    const float* wo = w + static_cast<int64_t>(o0) * k_count;
    const float* bo = b ? b + o0 : nullptr;
    for (int i = 0; i < oh; ++i) {
      const float* xrow = xb + static_cast<int64_t>(i) * g.sh * wp * kLanes;
      float* yrow = yb + o0 * y_ostride + static_cast<int64_t>(i) * ow * kLanes;
      for (int j0 = 0; j0 < ow; j0 += fwd_j) {
        const int tj = std::min(fwd_j, ow - j0);
        float* out = yrow + static_cast<int64_t>(j0) * kLanes;
        kForwardTiles[static_cast<size_t>(table_index(to, tj))](xrow + j0 * x_step, tap_offset.data(), k_count, wo, bo,
                                                                x_step, out, y_ostride);
        if (act != Act::None)
          for (int t = 0; t < to; ++t)
            activation_forward(act, static_cast<int64_t>(tj) * kLanes, out + t * y_ostride, out + t * y_ostride);
      }
    }
  }
}

void Plan::weight_grad(const float* xb, const float* dyb, float* dwacc, float* dbacc) const {
  const int64_t p = static_cast<int64_t>(g.oh()) * g.ow();
  const int64_t dy_ostride = p * kLanes;
  const int64_t x_row = static_cast<int64_t>(g.sh) * wp * kLanes, x_col = static_cast<int64_t>(g.sw) * kLanes;
  for (int o0 = 0; o0 < g.o; o0 += wgrad_o) {
    const int to = std::min(wgrad_o, g.o - o0);
    for (int k0 = 0; k0 < k_count; k0 += wgrad_k) {
      const int tk = std::min(wgrad_k, k_count - k0);
      kWeightGradTiles[static_cast<size_t>(table_index(to, tk))](xb, dyb + o0 * dy_ostride, tap_offset.data() + k0, g,
                                                                 x_row, x_col, dy_ostride,
                                                                 dwacc +
                                                                     (static_cast<int64_t>(o0) * k_count + k0) * kLanes,
                                                                 k_count);
    }
  }
  if (dbacc) {
    for (int o = 0; o < g.o; ++o) {
      vf s = simd::load(dbacc + o * kLanes);
      const float* d = dyb + o * dy_ostride;
      for (int64_t q = 0; q < p; ++q) s += simd::load(d + q * kLanes);
      simd::store(dbacc + o * kLanes, s);
    }
  }
}

void Plan::input_grad(const float* dyb, const float* w, float* dxb) const {
  std::fill_n(dxb, input_block_size(), 0.0f);
  const int oh = g.oh(), ow = g.ow();
  const int64_t dy_ostride = static_cast<int64_t>(oh) * ow * kLanes;
  const int64_t x_col = static_cast<int64_t>(g.sw) * kLanes;
  for (int i = 0; i < oh; ++i) {
    float* xrow = dxb + static_cast<int64_t>(i) * g.sh * wp * kLanes;
    for (int j0 = 0; j0 < ow; j0 += igrad_j) {
      const int tj = std::min(igrad_j, ow - j0);
      for (int k0 = 0; k0 < k_count; k0 += igrad_k) {
        const int tk = std::min(igrad_k, k_count - k0);
        kInputGradTiles[static_cast<size_t>(table_index(tj, tk))](xrow + j0 * x_col,
                                                                  dyb + (static_cast<int64_t>(i) * ow + j0) * kLanes,
                                                                  w + k0, tap_offset.data() + k0, g.o, k_count,
                                                                  dy_ostride, x_col);
      }
    }
  }
}

}  // namespace blocked

namespace {

using blocked::Plan;
using simd::kLanes;

// Per-thread scratch that grows and is kept between calls.
struct Scratch {
  Tensor in, out, grad;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}
void ensure(Tensor& t, int64_t n) {
  if (t.numel() < n) t.resize({n});
}

// Threads for a call: at least ~256k multiply-adds each, at most one per block.
int conv_threads(const ConvGeometry& g, int blocks) {
  const int64_t macs = static_cast<int64_t>(g.n) * g.o * g.oh() * g.ow() * g.c * g.kh * g.kw;
  return std::min(kernel_threads(macs, 1 << 18), blocks);
}

}  // namespace

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  // A few images: one at a time, vectorised within the image.
  if (g.n <= direct::kMaxBatch && direct::supports(g)) return direct::forward(g, x, w, b, y);
  const Plan plan(g);
  const int blocks = (g.n + kLanes - 1) / kLanes;
  const int threads = conv_threads(g, blocks);
  const int64_t in_size = static_cast<int64_t>(g.c) * g.h * g.w, out_size = static_cast<int64_t>(g.o) * g.oh() * g.ow();
  parallel_run(threads, [&](int t, int team) {
    int64_t begin, end;
    share(blocks, t, team, begin, end);
    Scratch& s = scratch();
    ensure(s.in, plan.input_block_size());
    ensure(s.out, plan.output_block_size());
    for (int64_t blk = begin; blk < end; ++blk) {
      const int n0 = static_cast<int>(blk) * kLanes, nv = std::min(kLanes, g.n - n0);
      blocked::pack(x + n0 * in_size, nv, g.c, g.h, g.w, g.ph, g.pw, s.in.data());
      plan.forward(s.in.data(), w, b, s.out.data());
      blocked::unpack(s.out.data(), nv, g.o, g.oh(), g.ow(), 0, 0, y + n0 * out_size);
    }
  });
}

void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  const Plan plan(g);
  const int blocks = (g.n + kLanes - 1) / kLanes;
  const int threads = conv_threads(g, blocks);
  const int64_t in_size = static_cast<int64_t>(g.c) * g.h * g.w, out_size = static_cast<int64_t>(g.o) * g.oh() * g.ow();
  const int64_t wsize = plan.weight_size();
  // Each thread's lane-wide weight and bias gradient sums; reduced below in
  // thread order, so results do not depend on timing.
  constexpr int kMaxThreads = 256;
  float* partial[kMaxThreads] = {};
  if (threads > kMaxThreads) throw std::invalid_argument("conv2d: more than 256 threads");
  int used = 1;  // the team that ran (1 inside another parallel run)
  parallel_run(threads, [&](int t, int team) {
    if (t == 0) used = team;
    int64_t begin, end;
    share(blocks, t, team, begin, end);
    Scratch& s = scratch();
    thread_local Tensor acc;
    ensure(acc, (wsize + g.o) * kLanes);
    std::fill_n(acc.data(), (wsize + g.o) * kLanes, 0.0f);
    partial[t] = acc.data();
    ensure(s.in, plan.input_block_size());
    ensure(s.out, plan.output_block_size());
    if (dx) ensure(s.grad, plan.input_block_size());
    for (int64_t blk = begin; blk < end; ++blk) {
      const int n0 = static_cast<int>(blk) * kLanes, nv = std::min(kLanes, g.n - n0);
      blocked::pack(x + n0 * in_size, nv, g.c, g.h, g.w, g.ph, g.pw, s.in.data());
      blocked::pack(dy + n0 * out_size, nv, g.o, g.oh(), g.ow(), 0, 0, s.out.data());
      plan.weight_grad(s.in.data(), s.out.data(), acc.data(), acc.data() + wsize * kLanes);
      if (dx) {
        plan.input_grad(s.out.data(), w, s.grad.data());
        blocked::unpack(s.grad.data(), nv, g.c, g.h, g.w, g.ph, g.pw, dx + n0 * in_size);
      }
    }
  });
  for (int64_t e = 0; e < wsize + g.o; ++e) {
    if (e >= wsize && !db) break;
    simd::vf sum = simd::load(partial[0] + e * kLanes);
    for (int t = 1; t < used; ++t) sum += simd::load(partial[t] + e * kLanes);
    const float total = simd::reduce_add(sum);
    if (e < wsize)
      dw[e] += total;
    else
      db[e - wsize] += total;
  }
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
