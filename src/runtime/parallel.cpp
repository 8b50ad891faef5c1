// The thread pool (runtime/thread_pool.h) and set_num_threads/num_threads.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "lenet/parallel.h"
#include "runtime/thread_pool.h"
#include "runtime/threads.h"

namespace lenet {

namespace {

int hardware_threads() {
  // The CPUs this process may run on (taskset, cgroups), not all of the machine's.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> configured{0};  // 0: all hardware threads

thread_local bool inside_run = false;

class Pool {
 public:
  ~Pool() {
    stop_.store(true);
    state_.fetch_add(uint64_t{1} << kTeamBits, std::memory_order_release);
    state_.notify_all();
    for (auto& w : workers_) w.join();
  }

  void run(int team, kernels::RunFunction fn, void* context) {
    // One run at a time: a second caller thread waits its turn.
    std::lock_guard<std::mutex> lock(mutex_);
    while (static_cast<int>(workers_.size()) < team - 1) {
      // The worker starts from the state before this run's, so it sees this run
      // however late the thread gets going.
      const int index = static_cast<int>(workers_.size()) + 1;
      const uint64_t before = state_.load(std::memory_order_acquire);
      workers_.emplace_back([this, index, before] { work(index, before); });
    }
    fn_ = fn;
    context_ = context;
    errors_.assign(static_cast<size_t>(team), nullptr);
    done_.store(0, std::memory_order_relaxed);
    // The generation and the team size in one word, so a worker reads both at once.
    ++generation_;
    state_.store(generation_ << kTeamBits | static_cast<uint64_t>(team), std::memory_order_release);
    state_.notify_all();
    call(0, team);
    // Wait for the other team - 1 threads (spins briefly, then blocks).
    for (int d = done_.load(std::memory_order_acquire); d != team - 1; d = done_.load(std::memory_order_acquire))
      done_.wait(d);
    fn_ = nullptr;
    for (auto& e : errors_)
      if (e) std::rethrow_exception(e);
  }

 private:
  static constexpr int kTeamBits = 16;

  void call(int t, int team) {
    inside_run = true;
    try {
      fn_(context_, t, team);
    } catch (...) {
      errors_[static_cast<size_t>(t)] = std::current_exception();
    }
    inside_run = false;
  }

  // Each generation is run exactly once by each worker of its team: a worker
  // that missed one was not in it (the caller waits for every member).
  void work(int index, uint64_t seen) {
    for (;;) {
      state_.wait(seen, std::memory_order_acquire);
      seen = state_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      const int team = static_cast<int>(seen & ((uint64_t{1} << kTeamBits) - 1));
      if (index >= team) continue;
      call(index, team);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == team - 1) done_.notify_one();
    }
  }

  std::mutex mutex_;
  std::vector<std::thread> workers_;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  kernels::RunFunction fn_ = nullptr;
  void* context_ = nullptr;
  std::vector<std::exception_ptr> errors_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(int n) { configured.store(n > 0 ? n : 0); }

int num_threads() {
  const int n = configured.load();
  return n > 0 ? n : hardware_threads();
}

namespace kernels {

void parallel_run(int team, RunFunction fn, void* context) {
  if (team <= 1 || inside_run) return fn(context, 0, 1);
  team = std::min(team, (1 << 16) - 1);
  pool().run(team, fn, context);
}

bool in_parallel() { return inside_run; }

int kernel_threads(int64_t work, int64_t grain) {
  if (in_parallel()) return 1;
  return static_cast<int>(std::clamp<int64_t>(work / std::max<int64_t>(grain, 1), 1, num_threads()));
}

void share(int64_t n, int t, int threads, int64_t& begin, int64_t& end) {
  begin = n * t / threads;
  end = n * (t + 1) / threads;
}

}  // namespace kernels

}  // namespace lenet
