// Convolution on blocks of simd::kLanes images held "batch in the lanes":
// xb[C][H+2PH][W+2PW][kLanes], one vector per pixel holding that pixel of every
// image of the block (missing images of a short block are zero). Internal to
// the library: conv2d.cpp runs the public NCHW kernels through it, and fused
// layer pipelines keep activations in this layout between layers.
#pragma once

#include <cstdint>
#include <vector>

#include "lenet/kernels.h"

namespace lenet::kernels::blocked {

// NCHW images x[n_valid][C][H][W] (consecutive) -> xb with a zero border of
// (ph, pw); lanes n_valid.. are zero.
void pack(const float* x, int n_valid, int c_count, int h, int w, int ph, int pw, float* xb);
// The inverse: the interior of xb -> x[n_valid][C][H][W].
void unpack(const float* xb, int n_valid, int c_count, int h, int w, int ph, int pw, float* x);

// A convolution's geometry with its tap offsets and register tiles, computed
// once per call (allocates; keep it out of inner loops).
struct Plan {
  explicit Plan(const ConvGeometry& g);
  ConvGeometry g;
  int hp = 0, wp = 0, k_count = 0;  // padded input size, taps per output (C·KH·KW)
  std::vector<int64_t> tap_offset;  // floats from an output's window corner to tap k
  int fwd_o = 1, fwd_j = 1, wgrad_o = 1, wgrad_k = 1, igrad_j = 1, igrad_k = 1;

  int64_t input_block_size() const;   // floats of xb (padded)
  int64_t output_block_size() const;  // floats of yb [O][OH][OW][kLanes]
  int64_t weight_size() const;        // O·C·KH·KW

  // yb = w ⋆ xb + b (b may be null).
  void forward(const float* xb, const float* w, const float* b, float* yb) const;
  // dwacc[O·K][kLanes] += per-lane weight gradient; dbacc[O][kLanes] likewise (may be null).
  void weight_grad(const float* xb, const float* dyb, float* dwacc, float* dbacc) const;
  // dxb (padded like xb) = input gradient, the border included.
  void input_grad(const float* dyb, const float* w, float* dxb) const;
};

}  // namespace lenet::kernels::blocked
