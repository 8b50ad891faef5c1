// A Sequential's fast path: the whole stack run in one parallel region per
// pass, each thread taking whole blocks of simd::kLanes images through every
// layer while they are in its cache.
//
//   x ─pack─► conv(+act) ─► act ─► pool ─► … ─unpack─► flatten rows ─► linear ─► act ─► …
//            └──────── blocked: batch in the lanes ─────────┘        └── rows of the thread ──┘
//
// Convolutions, activations and pooling keep the blocked layout from the input
// to Flatten (no transposes between them; an activation right after a
// convolution is applied as its output is written); Linear layers and what
// follows work on the thread's rows. Weight gradients are summed per thread
// and added in thread order at the end of backward: the same seed and thread
// count give bit-identical results. All buffers are kept between steps.
//
// Internal to Sequential (sequential.cpp), which runs the layers one by one
// when build() declines a stack.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lenet/nn.h"

namespace lenet::detail {

class Pipeline {
 public:
  // Null unless every layer is a Conv2d, Activation, Pool2d, Flatten or Linear
  // in an order the pipeline runs (image layers, then Flatten, then vector
  // layers) and the input shape fits the stack.
  static std::unique_ptr<Pipeline> build(const std::vector<std::unique_ptr<Module>>& layers, const Shape& input);
  ~Pipeline();

  // Whether the pipeline pays for this batch: a few images run faster one by
  // one through the layers (single-image latency).
  static bool worth(const Shape& input) { return !input.empty() && input[0] >= kMinBatch; }
  static constexpr int64_t kMinBatch = 4;
  // True when x has the shape built for, up to the batch size.
  bool fits(const Shape& input) const;
  // Writes the final output into outputs.back() (and the outputs of Flatten
  // and the layers after it into their slots of `outputs`).
  void forward(const Tensor& x, std::vector<Tensor>& outputs);
  // Accumulates every parameter gradient for d(loss)/d(output) = dy.
  void backward(const Tensor& dy, const std::vector<Tensor>& outputs);

  struct Impl;

 private:
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lenet::detail
