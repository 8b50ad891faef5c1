// One ISA's entry points for the dispatcher (runtime/isa.cpp); compiled per ISA.
#include "kernels/fast.h"
#include "kernels/int8.h"
#include "kernels/simd.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {
constexpr runtime::KernelTable kTable{
    LENET_ISA_NAME,      simd::kLanes,       &conv2d_forward,     &conv2d_backward,   &maxpool2d_forward,
    &maxpool2d_backward, &avgpool2d_forward, &avgpool2d_backward, &linear_forward,    &linear_backward,
    &sigmoid_forward,    &sigmoid_backward,  &relu_forward,       &relu_backward,     &tanh_forward,
    &tanh_backward,      &build_pipeline,    &int8::conv2d_int8,  &int8::linear_int8, &build_int8_pipeline,
};
}  // namespace

const runtime::KernelTable& table() { return kTable; }

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
