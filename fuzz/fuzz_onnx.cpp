// libFuzzer entry point for the ONNX importer (see targets.h).
#include "targets.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lenet::set_num_threads(1);  // one input at a time, deterministic
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lenet::fuzz::onnx(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
