// lenet: train, evaluate and deploy LeNet-family networks on the CPU.
#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "lenet/version.h"

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lenet.cpp: train, evaluate and deploy small convolutional networks on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return std::string("lenet.cpp ") + LENET_VERSION_STRING + "\n" + lenet::cli::kernels_line();
  });
  lenet::cli::add_info_command(app);
  lenet::cli::add_train_command(app);
  lenet::cli::add_eval_command(app);
  lenet::cli::add_quantize_command(app);
  lenet::cli::add_tutorial_command(app);
  lenet::cli::add_plot_command(app);
  lenet::cli::add_predict_command(app);
  lenet::cli::add_export_command(app);
  lenet::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; CLI11's own form spans two.
    std::fprintf(stderr, "lenet: error: %s (see lenet --help)\n", one_line(e.what()).c_str());
    return 2;
  } catch (const lenet::cli::ExitStatus& e) {
    std::fprintf(stderr, "lenet: %s\n", one_line(e.what()).c_str());
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lenet: error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
