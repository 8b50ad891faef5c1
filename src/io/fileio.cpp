#include "lenet/fileio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "lenet/error.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

fs::path temporary_beside(const fs::path& path) {
  thread_local std::mt19937_64 gen{std::random_device{}()};  // one per thread: writers may run concurrently
  std::ostringstream name;
  name << "." << path.filename().string() << ".tmp-" << ::getpid() << "-" << std::hex << (gen() & 0xffffff);
  return path.parent_path() / name.str();
}

[[noreturn]] void fail(const fs::path& path, const std::string& what, int err) {
  throw std::runtime_error("cannot write " + path.string() + ": " + what +
                           (err ? std::string(": ") + std::strerror(err) : ""));
}

// After a rename, sync the folder too, so that the new name survives a power
// cut (best effort: some file systems refuse to sync a folder).
void sync_folder(const fs::path& path) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// fsync the file, then rename it over the destination.
void commit(const fs::path& tmp, const fs::path& path) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "temporary file vanished", err);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "sync failed", err);
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::error_code ec;
    fs::remove(tmp, ec);
    fail(path, "rename failed", err);
  }
  sync_folder(path);
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = temporary_beside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644);
  if (fd < 0)
    fail(path,
         "cannot create a temporary file in " +
             (path.parent_path().empty() ? std::string(".") : path.parent_path().string()),
         errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, "write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  // close even when fsync fails (no leaked descriptor); either error fails the write.
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced || closed) {
    ::unlink(tmp.c_str());
    fail(path, "write failed", synced ? synced : closed);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "rename failed", err);
  }
  sync_folder(path);
}

void write_file_atomic(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path tmp = temporary_beside(path);
  // Claim the name first: a folder we cannot write to fails here, with the
  // same message as the other writes, before the library gets to try.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644);
  if (fd < 0)
    fail(path,
         "cannot create a temporary file in " +
             (path.parent_path().empty() ? std::string(".") : path.parent_path().string()),
         errno);
  ::close(fd);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  if (!fs::exists(tmp, ec) || fs::file_size(tmp, ec) == 0) {
    fs::remove(tmp, ec);
    fail(path, "nothing was written", 0);
  }
  commit(tmp, path);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) throw FileError(path, "read error");
  return os.str();
}

}  // namespace lenet
