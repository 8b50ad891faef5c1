// SplitMix64's finaliser: spreads seeds, epochs and image indices over a
// generator's seed space, so neighbouring values give unrelated streams. For
// src/data/ only (compiled once): the kernels keep their own copy in
// dropout_mask.h, inside each ISA's namespace.
#pragma once

#include <cstdint>

namespace lenet::data_detail {

inline uint64_t mix_seed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace lenet::data_detail
