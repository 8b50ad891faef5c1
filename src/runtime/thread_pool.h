// The library's one thread pool: persistent workers that run a function on a
// team of threads and return when all are done (the caller is thread 0).
//
// Why not OpenMP's: libgomp's idle threads spin at barriers unless the *user*
// sets OMP_WAIT_POLICY=passive before the program starts, and on a machine
// shared with other work a spinning or descheduled partner stalls every
// parallel region (measured: a training epoch with 2 threads ran at 10k
// images/s with libgomp's default policy and 19k with passive waits, on the
// same loaded machine). Here a waiting thread spins a few microseconds and then
// blocks (C++20 atomic wait, a futex on Linux).
//
// The pool only runs fn(t, team); how work is split is the caller's: the engine
// hands out fixed chunks dynamically (an atomic counter) and sums them in chunk
// order, plain kernels split statically (kernels::share). Either way results
// never depend on timing.
#pragma once

#include <type_traits>

namespace lenet::kernels {

// The type-erased form of parallel_run's function (no allocation per call).
using RunFunction = void (*)(void* context, int t, int team);
void parallel_run(int team, RunFunction fn, void* context);

// Runs fn(t, team) for t = 0 .. team − 1, thread 0 on the calling thread.
// team <= 1 or a call from inside another run: fn(0, 1) on the caller.
// An exception thrown by fn is rethrown here (the first one, by thread order).
template <class Fn>
void parallel_run(int team, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  parallel_run(
      team, [](void* c, int t, int n) { (*static_cast<F*>(c))(t, n); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

// True on a thread that is running a parallel_run function (kernels called
// from a fused pipeline then stay on their thread).
bool in_parallel();

}  // namespace lenet::kernels
