// Captures what code prints on stdout and stderr at the file-descriptor level
// (so C libraries' direct writes count too).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

namespace lenet::test {

// Runs `fn` with file descriptors 1 and 2 sent to a temporary file; returns what
// was written there (both streams, in order). An exception from fn is rethrown
// after the descriptors are restored.
inline std::string captured_output(const std::function<void()>& fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::FILE* sink = std::tmpfile();
  if (!sink) return "captured_output: no temporary file";
  const int saved_out = ::dup(1), saved_err = ::dup(2);
  ::dup2(fileno(sink), 1);
  ::dup2(fileno(sink), 2);
  auto restore = [&] {
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    ::close(saved_out);
    ::close(saved_err);
  };
  try {
    fn();
  } catch (...) {
    restore();
    std::fclose(sink);
    throw;
  }
  restore();
  std::string out;
  std::rewind(sink);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, sink)) > 0;) out.append(buf, n);
  std::fclose(sink);
  return out;
}

}  // namespace lenet::test
