// stb_image's allocations go through these (io/stb_image_impl.cpp), so that
// decode_image can cap them per image: stb grows its PNG inflate buffer for as
// long as the data keeps inflating (up to 4 GB), and a small file of
// compressed zeros would otherwise cost gigabytes.
#pragma once

#include <cstddef>

namespace lenet::stb {

extern thread_local std::size_t allocation_limit;  // bytes per allocation; SIZE_MAX: none
extern thread_local bool limit_hit;                 // an allocation was refused for the limit
void* limited_malloc(std::size_t n);
void* limited_realloc(void* p, std::size_t n);

}  // namespace lenet::stb
