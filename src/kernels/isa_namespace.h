// The sources that include this header are compiled once per ISA (see
// LENET_ISA_SOURCES in CMakeLists.txt), each copy with its own compiler flags
// and inside its own namespace, lenet::kernels::LENET_ISA_NAMESPACE
// (isa_baseline, isa_avx2, isa_avx512). Everything they define, inline
// functions and templates of our headers included, lives there: the linker
// can then never keep an AVX-512 copy of a function for a caller on another CPU.
#pragma once

#ifndef LENET_ISA_NAMESPACE
#error "compiled once per ISA: CMake defines LENET_ISA_NAMESPACE (see LENET_ISA_SOURCES)"
#endif
