// Plain-loop int8 kernels: the exact oracles for the per-ISA int8 kernels.
#include "lenet/quant.h"

namespace lenet::kernels::reference {

void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  const int oh = g.oh(), ow = g.ow();
  for (int n = 0; n < g.n; ++n)
    for (int o = 0; o < g.o; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          int32_t sum = bias ? bias[o] : 0;
          for (int c = 0; c < g.c; ++c)
            for (int a = 0; a < g.kh; ++a)
              for (int b = 0; b < g.kw; ++b) {
                const int r = i * g.sh - g.ph + a, col = j * g.sw - g.pw + b;
                const bool inside = r >= 0 && r < g.h && col >= 0 && col < g.w;
                const int32_t q = inside ? x[((static_cast<int64_t>(n) * g.c + c) * g.h + r) * g.w + col]
                                         : x_zero_point;
                sum += (q - x_zero_point) * w[((static_cast<int64_t>(o) * g.c + c) * g.kh + a) * g.kw + b];
              }
          y[((static_cast<int64_t>(n) * g.o + o) * oh + i) * ow + j] = sum;
        }
}

void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      int32_t sum = bias ? bias[o] : 0;
      for (int k = 0; k < in; ++k)
        sum += (x[static_cast<int64_t>(r) * in + k] - x_zero_point) * w[static_cast<int64_t>(o) * in + k];
      y[static_cast<int64_t>(r) * out + o] = sum;
    }
}

}  // namespace lenet::kernels::reference
