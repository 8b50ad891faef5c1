// The optimised kernels of one ISA: the fast half of lenet/kernels.h, declared
// again inside this ISA's namespace (kernels/isa_namespace.h). The public
// functions of kernels.h forward to the active ISA's (runtime/isa.cpp); code
// compiled per ISA calls these directly.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/isa_namespace.h"
#include "lenet/kernels.h"
#include "runtime/isa.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);
void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);
// LeNet's pooling, which the kernels special-case.
inline bool is_2x2_stride_2(const PoolGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
}
void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const PoolGeometry& g, const float* dy, const int32_t* argmax, float* dx);
void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y);
void avgpool2d_backward(const PoolGeometry& g, const float* dy, float* dx);
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y);
void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);
void sigmoid_forward(int64_t n, const float* x, float* y);
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx);
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);
void tanh_forward(int64_t n, const float* x, float* y);
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx);

// The planned engine of a Sequential for this ISA (runtime/pipeline.cpp).
std::unique_ptr<runtime::Pipeline> build_pipeline(const std::vector<std::unique_ptr<Module>>& layers,
                                                  const Shape& input);

// The int8 plan of a quantized Sequential for this ISA (runtime/int8_pipeline.cpp).
std::unique_ptr<runtime::Pipeline> build_int8_pipeline(const std::vector<std::unique_ptr<Module>>& layers,
                                                       const Quantization& quantization, const Shape& input);
// This ISA's entry points (runtime/isa_table.cpp).
const runtime::KernelTable& table();

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
