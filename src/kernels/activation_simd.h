// Vector exp, sigmoid, tanh and relu on simd::vf, shared by the activation
// kernels and the layers that fuse an activation into a convolution.
#pragma once

#include "kernels/isa_namespace.h"

#include <bit>

#include "kernels/simd.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::simd {

// e^x after Cephes' expf: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its
// degree-7 Taylor-like polynomial, 2^n through the exponent bits. x is clamped
// to [−87.3, 88]: e^x stays a normal float (0 and inf are never produced, which
// sigmoid and tanh below do not need).
inline vf exp(vf x) {
  x = min(max(x, splat(-87.3f)), splat(88.0f));
  const vf magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
  const vf t = fmadd(x, splat(1.44269504088896341f), magic);
  const vf n = t - magic;
  vf r = fmadd(n, splat(-0.693359375f), x);
  r = fmadd(n, splat(2.12194440e-4f), r);
  vf p = splat(1.9875691500e-4f);
  p = fmadd(p, r, splat(1.3981999507e-3f));
  p = fmadd(p, r, splat(8.3334519073e-3f));
  p = fmadd(p, r, splat(4.1665795894e-2f));
  p = fmadd(p, r, splat(1.6666665459e-1f));
  p = fmadd(p, r, splat(5.0000001201e-1f));
  const vf e = fmadd(p, r * r, r) + 1.0f;
  const vi32 bits = (__builtin_convertvector(n, vi32) + 127) << 23;
  return e * std::bit_cast<vf>(bits);
}

// 1 / d. With AVX-512: the 14-bit reciprocal estimate and one Newton step
// (within 2 ulp, a division costs several times more); otherwise a division.
inline vf reciprocal(vf d) {
#if defined(__AVX512F__)
  const vf r = _mm512_maskz_rcp14_ps(0xffff, d);  // (the unmasked form trips -Wmaybe-uninitialized in GCC 12)
  return r * (2.0f - d * r);
#else
  return 1.0f / d;
#endif
}

inline vf sigmoid(vf x) { return reciprocal(1.0f + exp(-x)); }

inline vf relu(vf x) { return x > 0.0f ? x : zero(); }

// tanh after Cephes' tanhf: an odd polynomial below |x| = 0.625 (where
// 1 − 2/(e^{2|x|} + 1) would lose digits), that formula above.
inline vf tanh(vf x) {
  const vi32 xi = std::bit_cast<vi32>(x);
  const vi32 ai = xi & 0x7fffffff;
  const vf a = std::bit_cast<vf>(ai);
  const vf big = 1.0f - 2.0f * reciprocal(exp(a + a) + 1.0f);
  const vi32 big_signed = std::bit_cast<vi32>(big) | (xi & static_cast<int32_t>(0x80000000u));
  const vf z = x * x;
  vf p = splat(-5.70498872745e-3f);
  p = fmadd(p, z, splat(2.06390887954e-2f));
  p = fmadd(p, z, splat(-5.37397155531e-2f));
  p = fmadd(p, z, splat(1.33314422036e-1f));
  p = fmadd(p, z, splat(-3.33332819422e-1f));
  const vf small = fmadd(p * z, x, x);
  return a < 0.625f ? small : std::bit_cast<vf>(big_signed);
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::simd
