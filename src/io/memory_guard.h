// A reader's body run so that a size too large to hold (std::bad_alloc,
// std::length_error) ends as a FileError naming the file, like every other
// problem with it. The readers check sizes against the file before they
// allocate; this is for what still fails on a machine short of memory. (In the
// fuzz build AddressSanitizer and libFuzzer's -malloc_limit_mb report a huge
// allocation before it can fail, so the fuzzer still sees any unchecked size.)
#pragma once

#include <filesystem>
#include <new>
#include <stdexcept>

#include "lenet/error.h"

namespace lenet {

template <class Read>
auto reading_within_memory(const std::filesystem::path& file, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const std::bad_alloc&) {
    throw FileError(file, "not enough memory to read it (the sizes it declares need more than this machine has free)");
  } catch (const std::length_error&) {
    throw FileError(file, "a size it declares is too large to hold in memory");
  }
}

}  // namespace lenet
