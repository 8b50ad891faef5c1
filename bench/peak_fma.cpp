// The core's FP32 multiply-add peak, per instruction set: a loop of
// independent multiply-adds that never leaves the registers (no loads, no
// stores), so nothing but the FMA units limits it. compare.py reports our
// training and inference GFLOP/s as a share of the widest path's figure.
//
//   lenet_peak [--threads N] [--seconds S] [--json]
//
// baseline: SSE, 4 lanes, a multiply then an add (x86-64's baseline has no
// FMA); avx2: 8 lanes, FMA; avx512: 16 lanes, FMA. Each path is compiled for
// its ISA with a target attribute and run only when __builtin_cpu_supports
// says the CPU has it. Enough independent accumulators cover the FMA latency
// times the FMA ports (4 cycles × 2 ports on current x86 cores: 8; 12 or 16 used).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Each returns a sum of its accumulators so that the loop cannot be dropped.
// The accumulators are named variables, not an array, so that they stay in
// registers (an array indexed in a loop is kept on the stack at -O2).
// The constants come from volatile variables: known at compile time, GCC would
// fold the whole loop away.
volatile float g_multiplier = 0.9999999f, g_addend = 1e-7f;

#define LENET_EACH12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LENET_EACH16(X) LENET_EACH12(X) X(12) X(13) X(14) X(15)

__attribute__((target("sse2"))) float loop_baseline(int64_t iterations) {
  const __m128 m = _mm_set1_ps(g_multiplier), c = _mm_set1_ps(g_addend);
#define INIT(i) __m128 a##i = _mm_set1_ps(1.0f + 0.01f * (i));
#define STEP(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, m), c);
#define SUM(i) s = _mm_add_ps(s, a##i);
  LENET_EACH12(INIT)
  for (int64_t n = 0; n < iterations; ++n) {
    LENET_EACH12(STEP)
  }
  __m128 s = _mm_setzero_ps();
  LENET_EACH12(SUM)
#undef INIT
#undef STEP
#undef SUM
  float out[4];
  _mm_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3];
}

__attribute__((target("avx2,fma"))) float loop_avx2(int64_t iterations) {
  // 12 of the 16 ymm registers; two hold the constants.
  const __m256 m = _mm256_set1_ps(g_multiplier), c = _mm256_set1_ps(g_addend);
#define INIT(i) __m256 a##i = _mm256_set1_ps(1.0f + 0.01f * (i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm256_add_ps(s, a##i);
  LENET_EACH12(INIT)
  for (int64_t n = 0; n < iterations; ++n) {
    LENET_EACH12(STEP)
  }
  __m256 s = _mm256_setzero_ps();
  LENET_EACH12(SUM)
#undef INIT
#undef STEP
#undef SUM
  float out[8];
  _mm256_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

__attribute__((target("avx512f"))) float loop_avx512(int64_t iterations) {
  // 16 of the 32 zmm registers.
  const __m512 m = _mm512_set1_ps(g_multiplier), c = _mm512_set1_ps(g_addend);
#define INIT(i) __m512 a##i = _mm512_set1_ps(1.0f + 0.01f * (i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm512_add_ps(s, a##i);
  LENET_EACH16(INIT)
  for (int64_t n = 0; n < iterations; ++n) {
    LENET_EACH16(STEP)
  }
  __m512 s = _mm512_setzero_ps();
  LENET_EACH16(SUM)
#undef INIT
#undef STEP
#undef SUM
  float out[16];
  _mm512_storeu_ps(out, s);
  float t = 0;
  for (float v : out) t += v;
  return t;
}

struct Path {
  const char* name;
  int lanes, accumulators;
  bool supported;
  float (*loop)(int64_t);
};

std::vector<Path> paths() {
  __builtin_cpu_init();
  return {{"baseline", 4, 12, true, loop_baseline},
          {"avx2", 8, 12, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), loop_avx2},
          {"avx512", 16, 16, __builtin_cpu_supports("avx512f") != 0, loop_avx512}};
}

volatile float g_sink;  // keeps every thread's result alive

// GFLOP/s of `threads` threads each running the loop `iterations` times; the
// best of three tries (the least disturbed on a shared machine).
double gflops(const Path& p, int threads, int64_t iterations) {
  double best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t) team.emplace_back([&] { g_sink = p.loop(iterations); });
    for (auto& member : team) member.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Two FLOPs (a multiply and an add) per lane, accumulator and iteration.
    const double flops = 2.0 * p.lanes * p.accumulators * static_cast<double>(iterations) * threads;
    best = std::max(best, flops / seconds / 1e9);
  }
  return best;
}

// Iterations that take about `seconds` on one thread.
int64_t calibrate(const Path& p, double seconds) {
  for (int64_t n = 1 << 16;; n *= 4) {
    const auto start = std::chrono::steady_clock::now();
    g_sink = p.loop(n);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (took > 0.02 || n > (int64_t{1} << 40))
      return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(n) * seconds / std::max(took, 1e-9)));
  }
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "lenet_peak: %s\nusage: lenet_peak [--threads N] [--seconds S] [--json]\n", why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double seconds = 0.2;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if ((arg == "--threads" || arg == "--seconds") && i + 1 < argc) {
      char* end = nullptr;
      const double v = std::strtod(argv[++i], &end);
      if (*end || !(v > 0)) usage((arg + " needs a positive number").c_str());
      if (arg == "--threads")
        threads = static_cast<int>(v);
      else
        seconds = v;
    } else {
      usage(("unknown argument '" + arg + "'").c_str());
    }
  }
  std::string out = "{\"threads\": " + std::to_string(threads) + ", \"paths\": [";
  if (!json)
    std::printf("%-9s %5s %12s %12s\n", "path", "lanes", "GFLOP/s 1t",
                ("GFLOP/s " + std::to_string(threads) + "t").c_str());
  bool first = true;
  for (const Path& p : paths()) {
    if (!p.supported) {
      if (!json) std::printf("%-9s %5d %12s %12s\n", p.name, p.lanes, "n/a", "n/a");
      continue;
    }
    const int64_t iterations = calibrate(p, seconds);
    const double one = gflops(p, 1, iterations);
    const double many = threads > 1 ? gflops(p, threads, iterations) : one;
    if (!json) std::printf("%-9s %5d %12.1f %12.1f\n", p.name, p.lanes, one, many);
    char item[160];
    std::snprintf(item, sizeof item, "%s{\"isa\": \"%s\", \"lanes\": %d, \"gflops_1t\": %.2f, \"gflops_nt\": %.2f}",
                  first ? "" : ", ", p.name, p.lanes, one, many);
    out += item;
    first = false;
  }
  if (json) std::printf("%s]}\n", out.c_str());
  return 0;
}
