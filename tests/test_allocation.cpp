// A training step allocates nothing once the buffers exist: counted through a
// replacement of the global operator new (vectors, shapes, std::function...)
// and of aligned_alloc (Tensor storage, src/tensor/tensor.cpp), and through
// the storage addresses of the model's tensors.
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
std::atomic<long> aligned_allocations{0};  // of them, through aligned_alloc
}  // namespace

// noinline: once inlined, GCC pairs these malloc/free calls with new/delete
// expressions and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
// std::aligned_alloc is the C library's; a definition in the executable takes
// its place for the whole process (posix_memalign does the work).
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    aligned_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = nullptr;
  return posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, n) == 0 ? p : nullptr;
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace lenet;

// The counters see both kinds of allocation (else the test below proves nothing).
TEST(Allocation, CountsOperatorNewAndTensorStorage) {
  aligned_allocations = 0;
  counting = true;
  { Tensor t({1000}); }
  const long tensor = aligned_allocations.exchange(0);
  allocations = 0;
  { std::vector<int> v(10); }
  const long vector = allocations.exchange(0);
  counting = false;
  EXPECT_GE(tensor, 1) << "Tensor storage (aligned_alloc) not counted";
  EXPECT_GE(vector, 1) << "operator new not counted";
}

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
