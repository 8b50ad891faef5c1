// How many threads a kernel call uses: one inside a parallel region (the
// engine already splits the batch), otherwise the pool's size bounded so that
// each thread gets at least `grain` units of work: a parallel region costs
// microseconds, and far more when the machine is oversubscribed.
//
// Defined out of line (parallel.cpp): the per-ISA kernels include this header,
// and an inline copy compiled with AVX flags could be the one the linker keeps.
#pragma once

#include <cstdint>

#include "lenet/parallel.h"
#include "runtime/thread_pool.h"

namespace lenet::kernels {

int kernel_threads(int64_t work, int64_t grain);

// [begin, end) of n split evenly over a team: static and contiguous, so the
// split (and any order of sums that follows it) depends only on the team size.
void share(int64_t n, int t, int threads, int64_t& begin, int64_t& end);

}  // namespace lenet::kernels
