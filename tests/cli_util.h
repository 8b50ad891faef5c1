// Runs the built `lenet` binary and captures its exit status, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lenet::test {

struct CliResult {
  int status = -1;  // exit code, or -1 when the process did not exit normally (a crash)
  std::string out, err;
};

// `args` is appended to the binary's path as shell words (quote paths yourself).
inline CliResult run_cli(const std::string& args) {
  // A unique stderr file: ctest runs tests in parallel processes.
  char err_path[] = "/tmp/lenet_cli_stderr_XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd >= 0) close(fd);
  const std::string cmd = std::string("\"") + LENET_CLI + "\" " + args + " 2>\"" + err_path + "\" </dev/null";
  CliResult r;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (std::FILE* f = std::fopen(err_path, "r")) {
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) r.err.append(buf.data(), n);
    std::fclose(f);
  }
  std::remove(err_path);
  return r;
}

// Number of lines in a text (a final line without newline counts).
inline int line_count(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

}  // namespace lenet::test
