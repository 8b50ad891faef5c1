// The one error type of lenet.cpp's readers. Every problem with a file a user
// hands us — checkpoint, ONNX model, IDX data, image — ends in a FileError that
// names the file and says in our words what is wrong, whatever library found it
// first (nlohmann::json, protobuf, zlib, stb_image) and whether it was a bad
// byte or a size too large to hold. Anything else escaping a reader is a bug
// (the fuzz targets treat it as a finding).
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace lenet {

class FileError : public std::runtime_error {
 public:
  // what() is "<path>: <problem>".
  FileError(const std::filesystem::path& path, const std::string& problem)
      : std::runtime_error(path.string() + ": " + problem),
        parts_(std::make_shared<const Parts>(Parts{path, problem})) {}

  const std::filesystem::path& path() const noexcept { return parts_->path; }
  const std::string& problem() const noexcept { return parts_->problem; }

 private:
  struct Parts {
    std::filesystem::path path;
    std::string problem;
  };
  std::shared_ptr<const Parts> parts_;  // shared: copying an exception must not throw
};

}  // namespace lenet
