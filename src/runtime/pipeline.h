// The planned engine that runs a Sequential: built once per input shape for
// the active ISA (runtime/isa.h), then run for every batch of that shape.
// The implementation, compiled per ISA, is in runtime/pipeline.cpp.
#pragma once

#include <vector>

#include "lenet/tensor.h"

namespace lenet::runtime {

class Pipeline {
 public:
  virtual ~Pipeline();
  // True when x has the shape built for, up to the batch size.
  virtual bool fits(const Shape& input) const = 0;
  // Writes the final output into outputs.back() (and the outputs of Flatten
  // and the layers after it into their slots of `outputs`).
  virtual void forward(const Tensor& x, std::vector<Tensor>& outputs) = 0;
  // Accumulates every parameter gradient for d(loss)/d(output) = dy.
  virtual void backward(const Tensor& dy, const std::vector<Tensor>& outputs) = 0;
};

}  // namespace lenet::runtime
