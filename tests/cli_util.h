// Runs the built `lenet` binary and captures its exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace lenet::test {

struct CliResult {
  int code = -1;  // exit code, or 128 + signal when the process was killed (a crash)
  std::string out, err;
};

// `args` is appended to the binary's path as shell words (quote paths with
// quoted()); `cwd` is the folder to run in (default: the test's); `env` is
// "NAME=value ..." set for this run only. Standard input is /dev/null.
inline CliResult run_cli(const std::string& args, const std::filesystem::path& cwd = {}, const std::string& env = "") {
  // A unique stderr file: ctest runs tests in parallel processes.
  char err_path[] = "/tmp/lenet_cli_stderr_XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd >= 0) close(fd);
  std::string cmd = (env.empty() ? "" : "env " + env + " ") + "'" + LENET_CLI + "' " + args + " 2>'" + err_path +
                    "' </dev/null";
  if (!cwd.empty()) cmd = "cd '" + cwd.string() + "' && " + cmd;
  CliResult r;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (std::FILE* f = std::fopen(err_path, "r")) {
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) r.err.append(buf.data(), n);
    std::fclose(f);
  }
  std::remove(err_path);
  return r;
}

inline std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// Number of lines in a text (a final line without newline counts).
inline int line_count(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

// A failed command that printed one "lenet: error: " line holding every phrase.
inline void expect_error_line(const CliResult& r, const std::vector<std::string>& phrases, const std::string& what) {
  EXPECT_NE(r.code, 0) << what;
  EXPECT_EQ(line_count(r.err), 1) << what << "\nstderr: " << r.err;
  EXPECT_EQ(r.err.rfind("lenet: error: ", 0), 0u) << what << "\nstderr: " << r.err;
  for (const auto& p : phrases)
    EXPECT_NE(r.err.find(p), std::string::npos) << what << "\nstderr: " << r.err << "lacks: " << p;
}

}  // namespace lenet::test
