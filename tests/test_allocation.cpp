// A training step allocates nothing once the buffers exist: counted through a
// replacement of the global operator new (vectors, shapes, std::function...)
// and through the storage addresses of the model's tensors.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "test_util.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

// noinline: once inlined, GCC pairs these malloc/free calls with new/delete
// expressions and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace lenet;

TEST(Allocation, TrainingStepAllocatesNothingAfterWarmUp) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Rng rng(3);
    Sequential m = build_model("lenet-max", {1, 28, 28}, 10, &rng);
    Sgd sgd(m, {.lr = 0.9f});
    Tensor x = test::random_tensor({64, 1, 28, 28}, rng, 0, 1), dz({64, 10});
    std::vector<int32_t> labels(64, 3);
    auto step = [&] {
      sgd.zero_grad();
      const Tensor& z = m.forward(x);
      kernels::softmax_cross_entropy(64, 10, z.data(), labels.data(), dz.data());
      m.backward(dz);
      sgd.step();
      return z.data();
    };
    step();
    const float* out = step();
    allocations = 0;
    counting = true;
    const float* again = step();
    counting = false;
    EXPECT_EQ(allocations.load(), 0) << threads << " threads";
    EXPECT_EQ(out, again) << "the output tensor moved";
  }
}
