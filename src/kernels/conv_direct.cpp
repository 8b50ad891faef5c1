// x[N,C,H,W] ⋆ w[O,C,KH,KW] + b[O] -> y[N,O,OH,OW], one image at a time; see conv_direct.h.
#include "kernels/conv_direct.h"
#include "kernels/fast.h"

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/simd.h"
#include "lenet/tensor.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::direct {

namespace {

using simd::kLanes;
using simd::Mask;
using simd::vf;

using simd::kMaxAcc;

struct Scratch {
  Tensor padded, weights, nhwc;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}
void ensure(Tensor& t, int64_t n) {
  if (t.numel() < n) t.resize({n});
}

// One image with its zero border, plus two vectors of slack at the end (column
// loads may run past the last row; those lanes are never stored).
void pad_image(const ConvGeometry& g, const float* x, float* xp) {
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  std::fill_n(xp, static_cast<int64_t>(g.c) * hp * wp + 2 * kLanes, 0.0f);
  for (int c = 0; c < g.c; ++c)
    for (int r = 0; r < g.h; ++r)
      std::copy_n(x + (static_cast<int64_t>(c) * g.h + r) * g.w, g.w,
                  xp + (static_cast<int64_t>(c) * hp + r + g.ph) * wp + g.pw);
}

// ---- over output columns: y[o][i][j0 + lane] ----

// TO channels × TR rows × TJ column vectors of the output.
template <int TO, int TR, int TJ>
void column_tile(const ConvGeometry& g, const float* xp, const float* w, const float* b, int o0, int i0, int j0,
                 float* y) {
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, oh = g.oh(), ow = g.ow();
  const int taps = g.kh * g.kw;
  const int64_t k_count = static_cast<int64_t>(g.c) * taps;
  vf acc[TO][TR][TJ];
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t) {
    const vf init = b ? simd::splat(b[o0 + t]) : simd::zero();
#pragma GCC unroll 2
    for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < TJ; ++v) acc[t][r][v] = init;
  }
  for (int c = 0; c < g.c; ++c)
    for (int a = 0; a < g.kh; ++a) {
      const float* row = xp + (static_cast<int64_t>(c) * hp + static_cast<int64_t>(i0) * g.sh + a) * wp + j0;
      const float* wk = w + static_cast<int64_t>(o0) * k_count + c * taps + a * g.kw;
      for (int bb = 0; bb < g.kw; ++bb) {
        vf xv[TR][TJ];
#pragma GCC unroll 2
        for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
          for (int v = 0; v < TJ; ++v)
            xv[r][v] = simd::load(row + static_cast<int64_t>(r) * g.sh * wp + v * kLanes + bb);
#pragma GCC unroll 8
        for (int t = 0; t < TO; ++t) {
          const vf wv = simd::splat(wk[t * k_count + bb]);
#pragma GCC unroll 2
          for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
            for (int v = 0; v < TJ; ++v) acc[t][r][v] = simd::fmadd(wv, xv[r][v], acc[t][r][v]);
        }
      }
    }
#pragma GCC unroll 8
  for (int t = 0; t < TO; ++t)
#pragma GCC unroll 2
    for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < TJ; ++v) {
        const int col = j0 + v * kLanes;
        if (col >= ow) continue;
        simd::store(y + (static_cast<int64_t>(o0 + t) * oh + i0 + r) * ow + col, acc[t][r][v],
                    Mask(std::min(kLanes, ow - col)));
      }
}

template <int TR, int TJ>
void column_tile_any(int to, const ConvGeometry& g, const float* xp, const float* w, const float* b, int o0, int i0,
                     int j0, float* y) {
  constexpr int kMaxTo = std::min(8, kMaxAcc / (TR * TJ));
  switch (std::min(to, kMaxTo)) {
    case 8:
      if constexpr (kMaxTo >= 8) return column_tile<8, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 7:
      if constexpr (kMaxTo >= 7) return column_tile<7, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 6:
      if constexpr (kMaxTo >= 6) return column_tile<6, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 5:
      if constexpr (kMaxTo >= 5) return column_tile<5, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 4:
      if constexpr (kMaxTo >= 4) return column_tile<4, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 3:
      if constexpr (kMaxTo >= 3) return column_tile<3, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    case 2:
      if constexpr (kMaxTo >= 2) return column_tile<2, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
      [[fallthrough]];
    default: return column_tile<1, TR, TJ>(g, xp, w, b, o0, i0, j0, y);
  }
}

template <int TR, int TJ>
constexpr int channels_per_tile() {
  return std::min(8, kMaxAcc / (TR * TJ));
}

void forward_by_columns(const ConvGeometry& g, const float* xp, const float* w, const float* b, float* y) {
  const int oh = g.oh(), ow = g.ow();
  const bool wide = ow > kLanes;  // two column vectors per tile
  for (int j0 = 0; j0 < ow; j0 += wide ? 2 * kLanes : kLanes)
    for (int i0 = 0; i0 < oh; i0 += 2) {
      const bool two_rows = i0 + 1 < oh;
      const int per_tile = wide ? (two_rows ? channels_per_tile<2, 2>() : channels_per_tile<1, 2>())
                                : (two_rows ? channels_per_tile<2, 1>() : channels_per_tile<1, 1>());
      for (int o0 = 0; o0 < g.o; o0 += per_tile) {
        const int to = std::min(per_tile, g.o - o0);
        if (wide && two_rows)
          column_tile_any<2, 2>(to, g, xp, w, b, o0, i0, j0, y);
        else if (wide)
          column_tile_any<1, 2>(to, g, xp, w, b, o0, i0, j0, y);
        else if (two_rows)
          column_tile_any<2, 1>(to, g, xp, w, b, o0, i0, j0, y);
        else
          column_tile_any<1, 1>(to, g, xp, w, b, o0, i0, j0, y);
      }
    }
}

// ---- over output channels: y[i][j][o0 + lane], then transposed to NCHW ----

// TP consecutive outputs of row i, one vector of channels each.
template <int TP>
void channel_tile(const ConvGeometry& g, const float* xp, const float* wt, const float* b, int ov, int i, int j0,
                  float* nhwc) {
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, ow = g.ow();
  vf acc[TP];
  const vf init = b ? simd::load(b + ov) : simd::zero();
#pragma GCC unroll 16
  for (int p = 0; p < TP; ++p) acc[p] = init;
  int64_t k = 0;
  for (int c = 0; c < g.c; ++c)
    for (int a = 0; a < g.kh; ++a) {
      const float* row = xp + (static_cast<int64_t>(c) * hp + static_cast<int64_t>(i) * g.sh + a) * wp +
                         static_cast<int64_t>(j0) * g.sw;
      for (int bb = 0; bb < g.kw; ++bb, ++k) {
        const vf wv = simd::load(wt + k * g.o + ov);
#pragma GCC unroll 16
        for (int p = 0; p < TP; ++p) acc[p] = simd::fmadd(simd::splat(row[p * g.sw + bb]), wv, acc[p]);
      }
    }
#pragma GCC unroll 16
  for (int p = 0; p < TP; ++p) simd::store(nhwc + (static_cast<int64_t>(i) * ow + j0 + p) * g.o + ov, acc[p]);
}

constexpr int kChannelTile = simd::kManyRegisters ? 12 : 6;

template <int... P>
void channel_tile_any(int tp, std::integer_sequence<int, P...>, const ConvGeometry& g, const float* xp, const float* wt,
                      const float* b, int ov, int i, int j0, float* nhwc) {
  ((tp == P + 1 ? (channel_tile<P + 1>(g, xp, wt, b, ov, i, j0, nhwc), true) : false) || ...);
}

void forward_by_channels(const ConvGeometry& g, const float* xp, const float* wt, const float* b, float* nhwc,
                         float* y) {
  const int oh = g.oh(), ow = g.ow();
  for (int ov = 0; ov < g.o; ov += kLanes)
    for (int i = 0; i < oh; ++i)
      for (int j0 = 0; j0 < ow; j0 += kChannelTile)
        channel_tile_any(std::min(kChannelTile, ow - j0), std::make_integer_sequence<int, kChannelTile>{}, g, xp, wt, b,
                         ov, i, j0, nhwc);
  gemm::transpose(oh * ow, g.o, nhwc, g.o, y, static_cast<int64_t>(oh) * ow);
}

}  // namespace

bool supports(const ConvGeometry& g) { return g.o % kLanes == 0 || g.sw == 1; }

void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  Scratch& s = scratch();
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  const int64_t k_count = static_cast<int64_t>(g.c) * g.kh * g.kw;
  const int64_t in_size = static_cast<int64_t>(g.c) * g.h * g.w, out_size = static_cast<int64_t>(g.o) * g.oh() * g.ow();
  ensure(s.padded, static_cast<int64_t>(g.c) * hp * wp + 2 * kLanes);
  const bool by_channels = g.o % kLanes == 0;
  if (by_channels) {
    // wᵀ[K, O]: a vector of output channels per tap.
    ensure(s.weights, k_count * g.o);
    gemm::transpose(g.o, static_cast<int>(k_count), w, k_count, s.weights.data(), g.o);
    ensure(s.nhwc, out_size);
  }
  for (int n = 0; n < g.n; ++n) {
    pad_image(g, x + n * in_size, s.padded.data());
    if (by_channels)
      forward_by_channels(g, s.padded.data(), s.weights.data(), b, s.nhwc.data(), y + n * out_size);
    else
      forward_by_columns(g, s.padded.data(), w, b, y + n * out_size);
  }
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::direct
