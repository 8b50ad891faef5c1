// Picks the ISA once per process and forwards the public kernels of
// lenet/kernels.h to it; see runtime/isa.h.
#include "runtime/isa.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "lenet/isa.h"
#include "lenet/quant.h"

namespace lenet::kernels {
// Each ISA's table (runtime/isa_table.cpp, compiled once per ISA).
#if !defined(__x86_64__)
// Other CPUs: one copy for the target's own vectors (aarch64: NEON, 4 lanes).
namespace isa_generic {
const runtime::KernelTable& table();
}
#else
namespace isa_baseline {
const runtime::KernelTable& table();
}
namespace isa_avx2 {
const runtime::KernelTable& table();
}
namespace isa_avx512 {
const runtime::KernelTable& table();
}
namespace isa_avx512vnni {
const runtime::KernelTable& table();
}
#endif
}  // namespace lenet::kernels

namespace lenet::runtime {

Pipeline::~Pipeline() = default;

namespace {

struct Path {
  const char* name;
  const KernelTable& (*table)();
  std::vector<const char*> features;  // what the CPU must have (and the OS enable)
};

const std::vector<Path>& paths() {
#if !defined(__x86_64__)
  static const std::vector<Path> p = {{"generic", &kernels::isa_generic::table, {}}};
#else
  static const std::vector<Path> p = {
      {"baseline", &kernels::isa_baseline::table, {}},
      {"avx2", &kernels::isa_avx2::table, {"avx2", "fma"}},
      {"avx512", &kernels::isa_avx512::table, {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"}},
      // The float kernels of avx512 again, and vpdpbusd for int8.
      {"avx512vnni",
       &kernels::isa_avx512vnni::table,
       {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni", "avx2", "fma"}},
  };
#endif
  return p;
}

// __builtin_cpu_supports takes a string literal only.
bool cpu_has(const std::string& f) {
#if !defined(__x86_64__)
  return f.empty();  // the generic path asks for nothing
#else
  __builtin_cpu_init();
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (f == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (f == "avx512vnni") return __builtin_cpu_supports("avx512vnni");
  return false;
#endif
}

std::string known_paths() {
  std::string out;
  const auto& all = paths();
  for (size_t i = 0; i < all.size(); ++i)
    out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + std::string(all[i].name);
  return out;
}

std::string missing(const Path& p) {
  std::string out;
  for (const char* f : p.features)
    if (!cpu_has(f)) out += (out.empty() ? "" : ", ") + std::string(f);
  return out;
}

const KernelTable& choose() {
  const char* forced = std::getenv("LENET_ISA");
  if (forced && *forced) {
    for (const Path& p : paths()) {
      if (p.name != std::string(forced)) continue;
      const std::string lacks = missing(p);
      if (!lacks.empty()) throw std::runtime_error("LENET_ISA=" + std::string(forced) + ": this CPU lacks " + lacks);
      return p.table();
    }
    throw std::runtime_error("LENET_ISA=" + std::string(forced) + ": unknown kernel path (" + known_paths() + ")");
  }
  const KernelTable* best = nullptr;
  for (const Path& p : paths())
    if (missing(p).empty()) best = &p.table();
  return *best;  // baseline needs nothing
}

}  // namespace

const KernelTable& active() {
  // A throwing initialisation is retried (and refused again) on the next call.
  static const KernelTable& table = choose();
  return table;
}

}  // namespace lenet::runtime

namespace lenet {

std::string active_isa() { return runtime::active().name; }
int active_lanes() { return runtime::active().lanes; }
std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const auto& p : runtime::paths())
    if (runtime::missing(p).empty()) out.push_back(p.name);
  return out;
}

}  // namespace lenet

// ---- the public fast kernels of lenet/kernels.h ----

namespace lenet::kernels {

using runtime::active;

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  active().conv2d_forward(g, x, w, b, y);
}
void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  active().conv2d_backward(g, x, w, dy, dx, dw, db);
}
void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y, int32_t* argmax) {
  active().maxpool2d_forward(g, x, y, argmax);
}
void maxpool2d_backward(const PoolGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
  active().maxpool2d_backward(g, dy, argmax, dx);
}
void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y) { active().avgpool2d_forward(g, x, y); }
void avgpool2d_backward(const PoolGeometry& g, const float* dy, float* dx) { active().avgpool2d_backward(g, dy, dx); }
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  active().linear_forward(n, in, out, x, w, b, y);
}
void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  active().linear_backward(n, in, out, x, w, dy, dx, dw, db);
}
void sigmoid_forward(int64_t n, const float* x, float* y) { active().sigmoid_forward(n, x, y); }
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx) {
  active().sigmoid_backward(n, y, dy, dx);
}
void relu_forward(int64_t n, const float* x, float* y) { active().relu_forward(n, x, y); }
void relu_backward(int64_t n, const float* y, const float* dy, float* dx) { active().relu_backward(n, y, dy, dx); }
void tanh_forward(int64_t n, const float* x, float* y) { active().tanh_forward(n, x, y); }
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) { active().tanh_backward(n, y, dy, dx); }

}  // namespace lenet::kernels

namespace lenet::kernels {

void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  active().conv2d_int8(g, x, x_zero_point, w, bias, y);
}
void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  active().linear_int8(n, in, out, x, x_zero_point, w, bias, y);
}

}  // namespace lenet::kernels
