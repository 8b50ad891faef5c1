// stb_image's allocations go through these (io/stb_image_impl.cpp), so that
// decode_image can cap them per image: stb grows its PNG inflate buffer for as
// long as the data keeps inflating (up to 4 GB), and a small file of
// compressed zeros would otherwise cost gigabytes.
#pragma once

#include <cstddef>

namespace lenet::stb {

// Caps each of stb's allocations on this thread (SIZE_MAX: no cap) and
// forgets an earlier refusal. Functions, not extern thread_local variables:
// GCC's UBSan reports a null store through the TLS wrapper of a variable
// defined in a file compiled without it (stb_image_impl.cpp).
void set_allocation_limit(std::size_t bytes);
// True when an allocation was refused for the cap since it was set.
bool allocation_limit_hit();
void* limited_malloc(std::size_t n);
void* limited_realloc(void* p, std::size_t n);

}  // namespace lenet::stb
