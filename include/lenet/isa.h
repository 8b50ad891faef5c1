// Which kernels run: the library holds a baseline x86-64 (SSE2), an AVX2+FMA
// and an AVX-512 copy of its kernels and picks the widest the CPU supports
// once per process. LENET_ISA=baseline|avx2|avx512|avx512vnni in the environment forces
// one (refused when the CPU lacks it).
#pragma once

#include <string>
#include <vector>

namespace lenet {

// "baseline", "avx2" or "avx512". Throws std::runtime_error, naming the value
// and the missing CPU features, when LENET_ISA is unknown or unsupported here.
std::string active_isa();
// Floats per vector of the active kernels (4, 8 or 16).
int active_lanes();
// The paths this CPU can run, narrowest first (always starts with "baseline").
std::vector<std::string> supported_isas();

}  // namespace lenet
