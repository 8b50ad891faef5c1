// Fully connected layer: x[N,I] · w[O,I]ᵀ + b[O] -> y[N,O]
#include <cblas.h>

#include <algorithm>

#include "lenet/kernels.h"
#include "lenet/parallel.h"

namespace lenet::kernels {

namespace {
// Rows [begin, end) of n split evenly over the team.
void share(int n, int t, int threads, int& begin, int& end) {
  begin = static_cast<int>(static_cast<int64_t>(n) * t / threads);
  end = static_cast<int>(static_cast<int64_t>(n) * (t + 1) / threads);
}
}  // namespace

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  const int threads = std::max(1, std::min(num_threads(), n / 16));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    int r0, r1;
    share(n, t, threads, r0, r1);
    for (int r = r0; r < r1; ++r)
      for (int o = 0; o < out; ++o) y[static_cast<int64_t>(r) * out + o] = b ? b[o] : 0.0f;
    if (r1 > r0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out, in, 1.0f, x + static_cast<int64_t>(r0) * in,
                  in, w, in, 1.0f, y + static_cast<int64_t>(r0) * out, out);
  }
}

void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  const int threads = std::max(1, std::min(num_threads(), 2));
#pragma omp parallel num_threads(threads)
  {
#pragma omp sections
    {
#pragma omp section
      {
        // dW[O,I] += dYᵀ[O,N] · X[N,I];  db[O] += Σ_n dY[n,O]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
        if (db)
          for (int r = 0; r < n; ++r)
            for (int o = 0; o < out; ++o) db[o] += dy[static_cast<int64_t>(r) * out + o];
      }
#pragma omp section
      {
        // dX[N,I] = dY[N,O] · W[O,I]
        if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
      }
    }
  }
}

}  // namespace lenet::kernels
