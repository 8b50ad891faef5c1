// A small single-threaded GEMM for the layer sizes of the LeNet family, and a
// matrix transpose. Internal to the library (linear.cpp and the fused layer
// engine calls them; callers split the rows over threads).
#pragma once

#include "kernels/isa_namespace.h"

#include <cstdint>

namespace lenet::kernels::LENET_ISA_NAMESPACE::gemm {

// C[M,N] = init + A·B where init is C itself when `accumulate`, else the row
// vector `bias[N]` (or 0 when bias is null). A(m, k) = a[m·a_m + k·a_k] with
// any strides (its elements are broadcast); B is row-major [K, N] with leading
// dimension ldb, C row-major with leading dimension ldc. Sums run over k in
// order, so a result does not depend on how the caller splits the rows.
void multiply(int m, int n, int k, const float* a, int64_t a_m, int64_t a_k, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate, const float* bias);

// dst[c][r] = src[r][c] for a rows × cols matrix (leading dimensions lds, ldd).
void transpose(int rows, int cols, const float* src, int64_t lds, float* dst, int64_t ldd);

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::gemm
