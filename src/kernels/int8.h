// The int8 kernels of one ISA (compiled per ISA, kernels/isa_namespace.h): a
// uint8 × int8 → int32 matrix product over weights packed once for this ISA's
// dot-product instruction; the same product run over the windows of an
// interleaved image (the implicit convolution: no patch rows copied out); and
// a direct convolution with output pixels in the lanes for layers of few
// output channels. The engine's int8 plan (runtime/int8_pipeline.cpp) and the
// public conv2d_int8/linear_int8 (lenet/quant.h) are built from them.
//
//   AVX-512 VNNI: vpdpbusd, 16 output channels × 4 k per instruction (u8·s8 summed in int32);
//   AVX2, SSE2:   vpmaddwd/pmaddwd on values widened to int16, 8 or 4 channels × 2 k.
// Both are exact: no int16 saturation (unlike pmaddubsw), int32 sums.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/isa_namespace.h"
#include "lenet/kernels.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::int8 {

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
inline constexpr int kCols = 16;
#elif defined(__AVX2__)
inline constexpr int kCols = 8;
#else
inline constexpr int kCols = 4;
#endif
// k is padded to a multiple of 4 (one dword of uint8 per row and group).
inline int padded_k(int k) { return (k + 3) / 4 * 4; }
inline int padded_n(int n) { return (n + kCols - 1) / kCols * kCols; }
// Sums stay exact in int32 up to this depth (255 · 127 · k < 2^31).
inline constexpr int kMaxDepth = 65536;

// Weights w[n][k] packed in blocks of kCols output channels, with the
// per-channel constant the product adds: bias[o] − zero_point · Σ_k w[o][k].
struct PackedWeights {
  int n = 0, k = 0, kp = 0, np = 0;
  std::unique_ptr<int16_t[]> data;  // np · kp int16 (the VNNI layout uses them as int8 pairs)
  std::unique_ptr<int32_t[]> add;   // np values (0 in the padding)
};
void pack(int n, int k, const int8_t* w, const int32_t* bias, int32_t zero_point, PackedWeights& p);

// c[r][o] = add[o] + Σ_k a[r][k] · w[o][k] for r < m, o < n. Rows of `a` have
// stride lda and kp valid bytes (zeros beyond k); rows of c stride ldc.
void gemm(int m, const uint8_t* a, int64_t lda, const PackedWeights& w, int32_t* c, int64_t ldc);

// One image with its zero padding (zero_point) around it, planar
// [C][H + 2·PH][W + 2·PW] (the direct convolution's) or interleaved
// [H + 2·PH][W + 2·PW][C] (the implicit one's), plus kSlack bytes that the
// kernels may read past the end (the direct convolution's windows of 32 on
// VNNI up to 63; the implicit one's last group 3).
inline constexpr int kSlack = 64;
inline int64_t padded_bytes(const ConvGeometry& g) {
  return static_cast<int64_t>(g.c) * (g.h + 2 * g.ph) * (g.w + 2 * g.pw) + kSlack;
}
void pad(const ConvGeometry& g, const uint8_t* x, uint8_t zero_point, uint8_t* padded);
void pad_hwc(const ConvGeometry& g, const uint8_t* x, uint8_t zero_point, uint8_t* padded);

// The implicit convolution: the product above with one row per output pixel,
// read in place from the interleaved padded image. Under output (i, j), kernel
// row a is KW·C consecutive bytes, so the weights are reordered to (a, b, c),
// each kernel row padded to whole groups of 4, and group g of a row lies
// offsets[g] bytes past the window's first byte.
struct ImplicitWeights {
  PackedWeights w;
  std::unique_ptr<int32_t[]> offsets;  // KH · groups of a kernel row
};
void pack_implicit(const ConvGeometry& g, const int8_t* w, const int32_t* bias, int32_t zero_point, ImplicitWeights& p);
// y[p][o] (row stride w.np) for the OH·OW output pixels p of one image.
void conv_implicit(const ConvGeometry& g, const uint8_t* padded, const ImplicitWeights& p, int32_t* y);

// The direct convolution of one padded image, output pixels in the vector
// lanes: for a few output channels the product above would leave most of its
// kCols-channel tile idle (LeNet's first layer: 6 channels, 25 taps). Each
// lane sums kDirectTaps horizontally adjacent taps in one instruction (AVX2,
// SSE2: pairs, pmaddwd; VNNI: quads, vpdpbusd), so it needs a horizontal
// stride of 1.
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
inline constexpr int kDirectTaps = 4;
#else
inline constexpr int kDirectTaps = 2;
#endif
inline constexpr int kDirectMaxChannels = 8;
bool direct_fits(const ConvGeometry& g);
// Weights as groups of kDirectTaps taps in one int32, `groups` of them per
// input channel, [C][groups][O], `add` as in PackedWeights. Group k starts at
// tap (layout[3k], layout[3k + 1]) and runs along the kernel row, or down the
// kernel column if layout[3k + 2]:
//   AVX2, SSE2: int16 pairs along the rows, KH·⌈KW/2⌉ groups (an odd KW's
//     last pair padded with 0);
//   VNNI: int8 quads, the row's first KW − KW % 4 taps along the rows, the
//     other columns down in quads of 4 rows, and what is left (KH % 4 rows ×
//     KW % 4 columns) along the rows padded with 0 (5×5: 5 + 1 + 1 = 7
//     groups, not 10).
struct DirectWeights {
  int o = 0, groups = 0;
  std::unique_ptr<int32_t[]> data;
  std::unique_ptr<int32_t[]> add;
  std::unique_ptr<int32_t[]> layout;  // 3 per group
};
void pack_direct(const ConvGeometry& g, const int8_t* w, const int32_t* bias, int32_t zero_point, DirectWeights& d);
// The int32 scratch conv_direct needs (VNNI: every 4-byte window of each
// padded row as one dword, and of each column where column quads are used,
// built once per image so that a tap group is one plain load for all the
// output rows that use it; 0 elsewhere), or conv_direct_max2x2 (AVX2, SSE2:
// the sums before pooling).
int64_t direct_workspace(const ConvGeometry& g, bool max2x2 = false);
// y[o][i][j] = add[o] + Σ w · padded, planar (NCHW of one image), int32.
void conv_direct(const ConvGeometry& g, const uint8_t* padded, const DirectWeights& d, int32_t* workspace, int32_t* y);
// The same followed by a 2×2, stride-2 max pooling of each channel's sums
// (no padding): y[o][i][j], ⌊OH/2⌋ × ⌊OW/2⌋ a channel, the largest of the
// four sums of window (i, j). VNNI pools in the registers, two output rows at
// a time, so the full-size sums are never stored.
void conv_direct_max2x2(const ConvGeometry& g, const uint8_t* padded, const DirectWeights& d, int32_t* workspace,
                        int32_t* y);

// The public kernels of lenet/quant.h for this ISA.
void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);
void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::int8
