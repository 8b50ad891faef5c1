// lenet: train, evaluate and deploy LeNet-family networks on the CPU.
#include <cstdio>
#include <exception>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"lenet.cpp: train, evaluate and deploy small convolutional networks on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lenet.cpp 0.1.0");
  lenet::cli::add_info_command(app);
  lenet::cli::add_train_command(app);
  lenet::cli::add_eval_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lenet: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
