// One thread pool for every kernel (src/runtime/thread_pool.h: persistent
// workers that block when idle instead of spinning). Results are bit-identical
// for the same thread count: work is split statically and partial sums are
// reduced in thread order.
#pragma once

namespace lenet {
// n <= 0 means all hardware threads.
void set_num_threads(int n);
int num_threads();
}  // namespace lenet
