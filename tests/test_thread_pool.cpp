// The library's thread pool (src/runtime/thread_pool.h): every thread of a team
// runs exactly once per call, whatever the team sizes in a row; nested calls
// stay on their thread; exceptions come back to the caller; callers on
// several threads take turns.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "lenet/parallel.h"
#include "runtime/thread_pool.h"

using namespace lenet;
using kernels::parallel_run;

TEST(ThreadPool, EveryThreadRunsOncePerCall) {
  // Team sizes that grow and shrink, many times: a worker that missed a call
  // or ran one twice would show in the counts (or hang the test).
  for (int round = 0; round < 300; ++round) {
    const int team = 1 + round % 5;
    std::vector<std::atomic<int>> runs(static_cast<size_t>(team));
    std::atomic<int> reported_team{0};
    parallel_run(team, [&](int t, int n) {
      runs[static_cast<size_t>(t)].fetch_add(1);
      reported_team.store(n);
    });
    EXPECT_EQ(reported_team.load(), team);
    for (int t = 0; t < team; ++t) EXPECT_EQ(runs[static_cast<size_t>(t)].load(), 1) << "team " << team;
  }
}

TEST(ThreadPool, NestedCallsStayOnTheirThread) {
  std::atomic<int> inner_calls{0};
  parallel_run(3, [&](int, int) {
    EXPECT_TRUE(kernels::in_parallel());
    parallel_run(4, [&](int t, int n) {
      EXPECT_EQ(t, 0);
      EXPECT_EQ(n, 1);
      inner_calls.fetch_add(1);
    });
  });
  EXPECT_EQ(inner_calls.load(), 3);
  EXPECT_FALSE(kernels::in_parallel());
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  EXPECT_THROW(parallel_run(3,
                            [](int t, int) {
                              if (t == 2) throw std::runtime_error("worker failed");
                            }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int> calls{0};
  parallel_run(3, [&](int, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 3);
}

TEST(ThreadPool, CallersOnSeveralThreadsTakeTurns) {
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int i = 0; i < 50; ++i) parallel_run(2, [&](int, int) { total.fetch_add(1); });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 3 * 50 * 2);
}

TEST(ThreadPool, ThreadCountSetting) {
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(0);  // all the CPUs this process may use
  EXPECT_GE(num_threads(), 1);
}
