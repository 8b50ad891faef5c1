// Built with -mavx2 outside any ISA namespace: scripts/check_isa.sh must
// reject it (CTest isa.check_finds_avx expects the check to fail).
#include <cstdio>
#include <cstdlib>

[[gnu::noinline]] float dot(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

int main(int argc, char**) {
  float a[64], b[64];
  for (int i = 0; i < 64; ++i) a[i] = b[i] = static_cast<float>(i * argc);
  std::printf("%f\n", static_cast<double>(dot(a, b, 64)));
  return EXIT_SUCCESS;
}
