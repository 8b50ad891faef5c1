// Layers on blocks of simd::kLanes images held "batch in the lanes":
// xb[C][H+2PH][W+2PW][kLanes], one vector per pixel holding that pixel of every
// image of the block (missing images of a short block are zero). Internal to
// the library: conv2d.cpp runs the public NCHW convolution through it, and
// runtime/pipeline.cpp keeps whole conv/activation/pool stacks in this layout.
//
// Every function works on one block, single-threaded; callers split blocks
// over threads.
#pragma once

#include "kernels/isa_namespace.h"

#include <cstdint>
#include <vector>

#include "lenet/kernels.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::blocked {

// NCHW images x[n_valid][C][H][W] (consecutive) -> xb with a zero border of
// (ph, pw); lanes n_valid.. are zero.
void pack(const float* x, int n_valid, int c_count, int h, int w, int ph, int pw, float* xb);
// The inverse: the interior of xb -> x[n_valid][C][H][W].
void unpack(const float* xb, int n_valid, int c_count, int h, int w, int ph, int pw, float* x);
// Unpadded [C][H][W][L] <-> the interior of a buffer with a (ph, pw) zero border.
void add_border(const float* xb, int c_count, int h, int w, int ph, int pw, float* padded);
void remove_border(const float* padded, int c_count, int h, int w, int ph, int pw, float* xb);

enum class Act { None, Sigmoid, ReLU, Tanh };

// y = f(x) and dx = dy · f'(y) over n floats (a block buffer, or rows: any n,
// single-threaded). The one dispatcher over Act: the engine's rows and the
// convolution's fused activation use it too.
void activation_forward(Act act, int64_t n, const float* x, float* y);
void activation_backward(Act act, int64_t n, const float* y, const float* dy, float* dx);

// A convolution's geometry with its tap offsets and register tiles, computed
// once (allocates; keep it out of inner loops).
struct Plan {
  explicit Plan(const ConvGeometry& g);
  ConvGeometry g;
  int hp = 0, wp = 0, k_count = 0;  // padded input size, taps per output (C·KH·KW)
  std::vector<int64_t> tap_offset;  // floats from an output's window corner to tap k
  int fwd_o = 1, fwd_j = 1, wgrad_o = 1, wgrad_k = 1, igrad_j = 1, igrad_k = 1;

  int64_t input_block_size() const;   // floats of xb (padded)
  int64_t output_block_size() const;  // floats of yb [O][OH][OW][kLanes]
  int64_t weight_size() const;        // O·C·KH·KW

  // yb = act(w ⋆ xb + b) (b may be null).
  void forward(const float* xb, const float* w, const float* b, float* yb, Act act = Act::None) const;
  // dwacc[O·K][kLanes] += per-lane weight gradient; dbacc[O][kLanes] likewise (may be null).
  void weight_grad(const float* xb, const float* dyb, float* dwacc, float* dbacc) const;
  // dxb (padded like xb) = input gradient, the border included.
  void input_grad(const float* dyb, const float* w, float* dxb) const;
};

// Pooling of an unpadded block [C][H][W][L] -> [C][OH][OW][L] (g.n is
// ignored). Max pooling records per lane which window cell won (row-major
// index inside the window; cells in the padding never win, the first maximum
// wins), average pooling divides by KH·KW (padded zeros count), as the NCHW
// kernels do.
void maxpool_forward(const PoolGeometry& g, const float* xb, float* yb, int32_t* code);
void maxpool_backward(const PoolGeometry& g, const float* dyb, const int32_t* code, float* dxb);
// Max pooling that tiles its input (window = stride, no padding) after an
// activation y = f(z): dz directly, dz = dy · f'(y) at each window's maximum
// and 0 elsewhere. f'(y) needs only the pooled y (the maximum itself), so the
// activation's full output need not be kept for backward.
bool tiles_input(const PoolGeometry& g);
void maxpool_backward_through(Act act, const PoolGeometry& g, const float* dyb, const int32_t* code,
                              const float* pooled, float* dzb);
void avgpool_forward(const PoolGeometry& g, const float* xb, float* yb);
void avgpool_backward(const PoolGeometry& g, const float* dyb, float* dxb);

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::blocked
