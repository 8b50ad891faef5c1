// Writes that cannot corrupt: every file goes to a temporary file beside its
// destination, is flushed to disk and renamed into place, so a crash or a
// failing write leaves the previous file as it was.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace lenet {

// Writes `bytes` to `path` atomically. Throws std::runtime_error naming the
// path and the reason (no permission, disk full, ...).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// For libraries that write to a file name themselves (PLplot, stb_image_write):
// `write` receives a temporary path in the destination's folder and must create
// it; the file is then synced and renamed onto `path`. If `write` throws, or
// creates nothing, the temporary file is removed and `path` is untouched.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path& tmp)>& write);

// Whole file into memory; throws FileError (lenet/error.h) naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace lenet
