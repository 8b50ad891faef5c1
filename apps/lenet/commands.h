// Each subcommand of the `lenet` tool lives in its own cmd_*.cpp and registers
// itself here. Commands throw on failure; main() turns an exception into one
// line on stderr and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>

namespace lenet::cli {

// An error the user can fix (bad flag value, missing file): printed without a stack of context.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void add_info_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);

}  // namespace lenet::cli
