// Run-time ISA dispatch: the kernels and the engine are compiled once per ISA
// (kernels/isa_namespace.h); each copy hands its entry points over in a
// KernelTable, and active() picks one table once per process: the widest the
// CPU runs, or the one LENET_ISA=baseline|avx2|avx512|avx512vnni names.
#pragma once

#include <memory>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/tensor.h"
#include "runtime/pipeline.h"

namespace lenet {
class Module;
struct Quantization;
}  // namespace lenet

namespace lenet::runtime {

struct KernelTable {
  const char* name;  // "baseline", "avx2", "avx512", "avx512vnni"
  int lanes;         // floats per vector: the block width of the engine's layout
  decltype(&kernels::conv2d_forward) conv2d_forward;
  decltype(&kernels::conv2d_backward) conv2d_backward;
  decltype(&kernels::maxpool2d_forward) maxpool2d_forward;
  decltype(&kernels::maxpool2d_backward) maxpool2d_backward;
  decltype(&kernels::avgpool2d_forward) avgpool2d_forward;
  decltype(&kernels::avgpool2d_backward) avgpool2d_backward;
  decltype(&kernels::linear_forward) linear_forward;
  decltype(&kernels::linear_backward) linear_backward;
  decltype(&kernels::sigmoid_forward) sigmoid_forward;
  decltype(&kernels::sigmoid_backward) sigmoid_backward;
  decltype(&kernels::relu_forward) relu_forward;
  decltype(&kernels::relu_backward) relu_backward;
  decltype(&kernels::tanh_forward) tanh_forward;
  decltype(&kernels::tanh_backward) tanh_backward;
  std::unique_ptr<Pipeline> (*build_pipeline)(const std::vector<std::unique_ptr<Module>>& layers, const Shape& input);
  // int8 (lenet/quant.h): the integer kernels and the plan of a quantized Sequential.
  void (*conv2d_int8)(const kernels::ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w,
                      const int32_t* bias, int32_t* y);
  void (*linear_int8)(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w,
                      const int32_t* bias, int32_t* y);
  std::unique_ptr<Pipeline> (*build_int8_pipeline)(const std::vector<std::unique_ptr<Module>>& layers,
                                                   const Quantization& quantization, const Shape& input);
};

// The active ISA's table, chosen on the first call. Throws std::runtime_error
// when LENET_ISA names an unknown path or one this CPU cannot run.
const KernelTable& active();

}  // namespace lenet::runtime
