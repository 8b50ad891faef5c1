// Dropout's mask as a pure function of (key, index): the same value whether
// the module, the engine's blocked layout or its rows compute it, on any
// thread and ISA. key mixes the module's seed with its forward count; index is
// image · values_per_image + position.
#pragma once

#include <cstdint>

// Inside an ISA's namespace when compiled per ISA (see isa_namespace.h): no
// inline function is shared across ISAs.
#ifdef LENET_ISA_NAMESPACE
namespace lenet::kernels::LENET_ISA_NAMESPACE {
#else
namespace lenet::kernels {
#endif

// splitmix64's finaliser.
inline uint64_t dropout_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The key of forward number `count` of a Dropout seeded with `seed`.
inline uint64_t dropout_key(uint64_t seed, uint64_t count) { return dropout_mix(seed ^ dropout_mix(count)); }

// 0 with probability p, else scale = 1 / (1 − p): a 24-bit uniform against p.
inline float dropout_scale(uint64_t key, int64_t index, float p, float scale) {
  const auto u = static_cast<uint32_t>(dropout_mix(key + static_cast<uint64_t>(index)) >> 40);
  return static_cast<float>(u) >= p * 16777216.0f ? scale : 0.0f;
}

inline float dropout_keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

}  // namespace
