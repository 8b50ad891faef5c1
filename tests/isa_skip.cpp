// The per-ISA CTest runs (tests/CMakeLists.txt: LENET_ISA=<path> in their
// environment) on a CPU without that path: exit 77 before any test runs, which
// CTest reports as skipped (SKIP_RETURN_CODE). An unknown value still fails
// (the library refuses it on the first kernel call).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lenet/isa.h"

namespace {
const bool checked = [] {
  const char* forced = std::getenv("LENET_ISA");
  if (!forced || !*forced) return true;
  const std::string want = forced;
  const auto have = lenet::supported_isas();
  const bool known = want == "baseline" || want == "avx2" || want == "avx512" || want == "avx512vnni";
  if (known && std::find(have.begin(), have.end(), want) == have.end()) {
    std::printf("skipped: LENET_ISA=%s, which this CPU cannot run\n", forced);
    std::exit(77);
  }
  return true;
}();
}  // namespace
