// Direct convolution of single images, NCHW in and out, for small batches (a
// block of kLanes images would leave most lanes empty: single-image latency).
// Internal to conv2d.cpp. Two vectorisations:
//   over output channels when O is a multiple of kLanes (LeNet's conv2: 16),
//   over output columns when the stride across is 1 (LeNet's conv1: 28 wide).
#pragma once

#include "kernels/isa_namespace.h"

#include "lenet/kernels.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::direct {

// Up to this many images, a block of kLanes images would be mostly empty:
// the engine and conv2d_forward take this path instead.
inline constexpr int kMaxBatch = 3;

// Whether forward() handles this geometry.
bool supports(const ConvGeometry& g);
// All g.n images one after the other on the calling thread.
void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::direct
