// One thread pool for every kernel (src/runtime/thread_pool.h: persistent
// workers that block when idle instead of spinning). Results do not depend on
// the thread count: the engine cuts a batch into chunks that depend only on the
// batch size, threads take chunks as they come, and partial sums are added in
// chunk order; plain kernels split their work statically.
#pragma once

namespace lenet {
// n <= 0 means all hardware threads.
void set_num_threads(int n);
int num_threads();
}  // namespace lenet
