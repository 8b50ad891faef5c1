// How many threads a kernel call uses: one inside a parallel region (a fused
// layer pipeline already splits the batch), otherwise the pool's size bounded
// so that each thread gets at least `grain` units of work: a parallel region
// costs microseconds, and far more when the machine is oversubscribed.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/thread_pool.h"
#include "lenet/parallel.h"

namespace lenet::kernels {

inline int kernel_threads(int64_t work, int64_t grain) {
  if (in_parallel()) return 1;
  return static_cast<int>(std::clamp<int64_t>(work / std::max<int64_t>(grain, 1), 1, num_threads()));
}

// [begin, end) of n split evenly over a team: static and contiguous, so the
// split (and any order of sums that follows it) depends only on the team size.
inline void share(int64_t n, int t, int threads, int64_t& begin, int64_t& end) {
  begin = n * t / threads;
  end = n * (t + 1) / threads;
}

}  // namespace lenet::kernels
