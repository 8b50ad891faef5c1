// The planned engine (src/runtime/): numerical gradients at batch sizes that
// take its direct (1, 3) and blocked (17, 40) forms for every activation ×
// pooling × padding of LeNet-like stacks; the ISA dispatch (LENET_ISA, the
// refusals, the portable binary on older CPUs under qemu-user).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/isa.h"
#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/parallel.h"
#include "test_util.h"

using namespace lenet;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string act, pool;
  int padding;
  int batch;
};

std::string name_of(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return c.act + "_" + c.pool + "_p" + std::to_string(c.padding) + "_n" + std::to_string(c.batch);
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (const char* act : {"sigmoid", "relu", "tanh"})
    for (const char* pool : {"maxpool", "avgpool"})
      for (int padding : {0, 2})
        for (int batch : {1, 3, 17, 40}) out.push_back({act, pool, padding, batch});
  return out;
}

}  // namespace

class EngineGradients : public ::testing::TestWithParam<Case> {};

// Sequential's forward/backward (the engine) against central differences of
// the summed cross-entropy, computed in double from the engine's own forward.
TEST_P(EngineGradients, MatchCentralDifferences) {
  const Case& c = GetParam();
  set_num_threads(2);
  const std::string spec = "conv 4 k5 p" + std::to_string(c.padding) + ", " + c.act + ", " + c.pool +
                           " 2, conv 6 k3, " + c.act + ", " + c.pool + " 2, flatten, linear 12, " + c.act + ", linear";
  Rng rng(41 + c.batch);
  Sequential m = build_model(spec, {1, 12, 12}, 3, &rng);
  Tensor x = test::random_tensor({c.batch, 1, 12, 12}, rng, 0, 1);
  std::vector<int32_t> labels(static_cast<size_t>(c.batch));
  for (int i = 0; i < c.batch; ++i) labels[static_cast<size_t>(i)] = i % 3;
  auto loss = [&] {
    const Tensor& z = m.forward(x);
    return kernels::softmax_cross_entropy(c.batch, 3, z.data(), labels.data(), nullptr, kernels::Reduction::Sum);
  };
  m.zero_grad();
  const Tensor& z = m.forward(x);
  Tensor dz(z.shape());
  kernels::softmax_cross_entropy(c.batch, 3, z.data(), labels.data(), dz.data(), kernels::Reduction::Sum);
  m.backward(dz);
  // h = 1e-3: the float forward's rounding stays well below the tolerance.
  // Where the step crosses a kink (ReLU at 0, a max pooling's winner
  // changing) the central difference means nothing: the one-sided slopes,
  // or the differences at h and h/2, then disagree, and that coordinate is
  // left out (at most half; none for sigmoid/tanh with average pooling).
  const float h = 1e-3f;
  const double mid = loss();
  int checked = 0, kinks = 0;
  for (Parameter* p : m.parameters()) {
    for (int64_t i = 0; i < p->numel(); i += std::max<int64_t>(1, p->numel() / 5)) {
      const float keep = p->value[i];
      p->value[i] = keep + h;
      const double up = loss();
      p->value[i] = keep - h;
      const double down = loss();
      p->value[i] = keep;
      p->value[i] = keep + h / 2;
      const double up2 = loss();
      p->value[i] = keep - h / 2;
      const double down2 = loss();
      p->value[i] = keep;
      const double numeric = (up - down) / (2.0 * h), numeric2 = (up2 - down2) / h;
      const double right = (up - mid) / h, left = (mid - down) / h;
      const double tolerance = 2e-3 + 2e-4 * c.batch + 1e-2 * std::fabs(numeric);
      // Smooth there: the slopes differ by about h·f'', far below the tolerance.
      // (Two kinks on either side may balance the slopes; not at two step sizes.)
      if (std::fabs(right - left) > tolerance || std::fabs(numeric - numeric2) > tolerance / 2) {
        ++kinks;
        continue;
      }
      EXPECT_NEAR(p->grad[i], numeric, tolerance) << spec << ": " << p->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 25);
  EXPECT_LE(kinks, checked / 2) << spec << ": " << kinks << " coordinates at a kink";
  if (c.act != "relu" && c.pool != "maxpool") EXPECT_EQ(kinks, 0) << spec;  // smooth everywhere
  set_num_threads(0);
}

INSTANTIATE_TEST_SUITE_P(LeNetLike, EngineGradients, ::testing::ValuesIn(all_cases()), name_of);

// Every batch size runs through the engine and agrees with the layers run one
// by one through Module::forward (the plain path), across the direct/blocked
// switch and a re-plan for a new input shape.
TEST(Engine, EveryBatchSizeMatchesTheModulesOneByOne) {
  Rng rng(9);
  Sequential m = build_model("lenet-max", {1, 28, 28}, 10, &rng);
  for (int n : {1, 2, 3, 4, 5, 16, 17, 33}) {
    Tensor x = test::random_tensor({n, 1, 28, 28}, rng, 0, 1);
    Tensor ref = x, next;
    for (size_t i = 0; i < m.size(); ++i) {
      m[i].forward(ref, next);
      ref = next;
    }
    const Tensor& got = m.forward(x);
    ASSERT_EQ(got.shape(), ref.shape()) << n;
    EXPECT_LE(max_abs_diff(got, ref), 1e-5f) << "batch " << n;
  }
}

// A stack the specs can write without Flatten (convolutions only), and a
// Flatten of rows, run through the engine too.
TEST(Engine, ConvolutionOnlyAndRowStacks) {
  Rng rng(5);
  Sequential conv;  // build_model insists on [N, classes] at the end; Sequential does not
  conv.add(std::make_unique<Conv2d>(Conv2dOptions(1, 3, 3).padding(1)));
  conv.add(std::make_unique<ReLU>());
  conv.add(std::make_unique<MaxPool2d>(Pool2dOptions(2)));
  conv.add(std::make_unique<Conv2d>(Conv2dOptions(3, 2, 3)));
  init_xavier_uniform(conv, rng);
  Sequential rows = build_model("flatten, linear 5, tanh, flatten, linear", {1, 4, 4}, 3, &rng);
  for (int n : {1, 20}) {
    for (Sequential* m : {&conv, &rows}) {
      Tensor x = test::random_tensor({n, 1, m == &conv ? 8 : 4, m == &conv ? 8 : 4}, rng);
      Tensor ref = x, next;
      for (size_t i = 0; i < m->size(); ++i) {
        (*m)[i].forward(ref, next);
        ref = next;
      }
      const Tensor& got = m->forward(x);
      ASSERT_EQ(got.shape(), ref.shape());
      EXPECT_LE(max_abs_diff(got, ref), 1e-5f) << m->spec() << " batch " << n;
      Tensor dy = test::random_tensor(got.shape(), rng);
      m->zero_grad();
      EXPECT_NO_THROW(m->backward(dy)) << m->spec();
    }
  }
}

TEST(Isa, ActivePathIsOneTheCpuSupports) {
  const auto supported = supported_isas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), "baseline");
  EXPECT_NE(std::find(supported.begin(), supported.end(), active_isa()), supported.end());
  const std::string forced = std::getenv("LENET_ISA") ? std::getenv("LENET_ISA") : "";
  if (!forced.empty())
    EXPECT_EQ(active_isa(), forced);
  else
    EXPECT_EQ(active_isa(), supported.back());  // the widest
  EXPECT_EQ(active_lanes(), active_isa().starts_with("avx512") ? 16 : active_isa() == "avx2" ? 8 : 4);
}

TEST(Isa, CliNamesThePathAndRefusesBadValues) {
  const auto r = test::run_cli("--version");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("kernels: "), std::string::npos) << r.out;
  const auto base = test::run_cli("info", {}, "LENET_ISA=baseline");
  ASSERT_EQ(base.code, 0) << base.err;
  EXPECT_NE(base.out.find("kernels: baseline (4 lanes)"), std::string::npos) << base.out;
  const auto bad = test::run_cli("info", {}, "LENET_ISA=sse9");
  EXPECT_NE(bad.code, 0);
  EXPECT_EQ(bad.err, "lenet: error: LENET_ISA=sse9: unknown kernel path (baseline, avx2, avx512 or avx512vnni)\n");
}

namespace {
bool have_qemu() { return std::system("command -v qemu-x86_64 >/dev/null 2>&1") == 0; }
}  // namespace

// The default (portable) build on CPUs without AVX-512 (Haswell: AVX2+FMA)
// and without AVX (Nehalem: SSE4.2), emulated by qemu-user: info, and one
// epoch of training on a small synthetic set; a forced path the CPU lacks is
// refused in one line.
TEST(Isa, PortableBinaryRunsOnOlderCpusUnderQemu) {
  if (!have_qemu())
    GTEST_SKIP() << "qemu-x86_64 is not installed (Debian package qemu-user; scripts/setup.sh installs it)";
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP()
      << "AddressSanitizer's shadow memory does not fit qemu-user's address space; the Release suite runs this";
#endif
  test::ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 96, 32, 12, 3);
  for (const std::string cpu : {"Haswell", "Nehalem"}) {
    // run_cli's env is the start of an `env` command line: qemu runs the binary.
    const std::string qemu = "LENET_UNDER_QEMU=1 qemu-x86_64 -cpu " + cpu;
    const auto info = test::run_cli("info", {}, qemu);
    ASSERT_EQ(info.code, 0) << cpu << ": " << info.err;
    const std::string expect = cpu == "Haswell" ? "kernels: avx2 (8 lanes)" : "kernels: baseline (4 lanes)";
    EXPECT_NE(info.out.find(expect), std::string::npos) << cpu << ": " << info.out;
    const auto train = test::run_cli("train --data " + test::quoted(dir / "data") +
                                         " --arch lenet-max --epochs 1 --batch-size 32 --threads 2 --out " +
                                         test::quoted(dir / ("run-" + cpu)),
                                     {}, qemu);
    ASSERT_EQ(train.code, 0) << cpu << ": " << train.err;
    EXPECT_TRUE(fs::exists(dir / ("run-" + cpu) / "last.safetensors")) << cpu;
    const auto refused = test::run_cli("info", {}, "LENET_ISA=avx512 " + qemu);
    EXPECT_NE(refused.code, 0) << cpu;
    EXPECT_NE(refused.err.find("lenet: error: LENET_ISA=avx512: this CPU lacks avx512f"), std::string::npos)
        << cpu << ": " << refused.err;
  }
}
