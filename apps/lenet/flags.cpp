// What several commands share, in one place: the --threads flag, the held-out
// split of an image folder without test/ (--test-split, --split-seed, or what
// the training run stored in its checkpoints), and loading a data set with
// its skipped files shown.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "commands.h"
#include "lenet/image.h"

namespace lenet::cli {

void add_threads_option(CLI::App& cmd, int& threads) {
  cmd.add_option("--threads", threads,
                 "Worker threads (0: all the cores this process may use; at most " + std::to_string(kMaxThreads) + ")")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            // Checked on the text, before CLI11 converts it, so that every bad value gets this one message.
            const bool digits = !text.empty() && text.size() <= 9 &&
                                text.find_first_not_of("0123456789") == std::string::npos;
            if (!digits || std::stol(text) > kMaxThreads)
              return "must be a whole number from 0 to " + std::to_string(kMaxThreads) + " (0: all cores), got '" +
                     text + "'";
            return "";
          },
          "0.." + std::to_string(kMaxThreads)));
}

void check_split_fraction(const std::string& flag, double fraction) {
  if (!(fraction > 0 && fraction < 1)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", fraction);
    throw UsageError(flag + " must lie between 0 and 1 (exclusive), got " + text);
  }
}

double stored_fraction(const std::string& text, const std::string& key, const std::string& source) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end || !(x > 0 && x < 1))
    throw UsageError(source + ": the stored " + key + " '" + text + "' is not a fraction between 0 and 1");
  return x;
}

uint64_t stored_split_seed(const std::string& text, const std::string& source) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] < '0' || text[0] > '9' || *end || errno == ERANGE)
    throw UsageError(source + ": the stored split_seed '" + text + "' is not a whole number");
  return x;
}

void stored_held_out_split(const std::map<std::string, std::string>& metadata, const std::string& source,
                           DataOptions& options) {
  auto it = metadata.find("test_split");
  if (it == metadata.end()) it = metadata.find("val_split");  // written before --test-split: the test share
  if (it != metadata.end()) options.test_split = stored_fraction(it->second, it->first, source);
  if (auto seed = metadata.find("split_seed"); seed != metadata.end())
    options.seed = stored_split_seed(seed->second, source);
}

int data_channels_for(const ModelInfo& info) {
  return info.input_shape.size() == 3 && info.input_shape[0] == 3 ? 3 : 1;
}

DataSplit load_data(const std::filesystem::path& dir, const DataOptions& options) {
  ImageLoadReport report;
  DataSplit split = load_dataset(dir, options, &report);
  for (const auto& s : report.skipped) std::fprintf(stderr, "lenet: warning: skipped %s\n", s.c_str());
  if (!report.skipped.empty())
    std::fprintf(stderr, "lenet: warning: skipped %zu file(s) of %lld in %s\n", report.skipped.size(),
                 static_cast<long long>(report.files), dir.string().c_str());
  return split;
}

}  // namespace lenet::cli
