// lenet: train, evaluate and deploy LeNet-family networks on the CPU.
#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "lenet/distributed.h"
#include "lenet/version.h"

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  namespace dist = lenet::distributed;
  // Under mpirun every process joins the group first; only rank 0 prints
  // what all of them know, and a failure one rank alone saw ends them all.
  try {
    dist::start(argc, argv);
  } catch (const std::exception& e) {
    if (dist::launcher_rank() == 0) std::fprintf(stderr, "lenet: error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  const bool several = dist::size() > 1, root = dist::rank() == 0;
  auto finish = [&](int code) {
    dist::finish();
    return code;
  };
  if (several && (argc < 2 || std::string(argv[1]) != "train")) {
    if (root)
      std::fprintf(stderr, "lenet: error: only lenet train runs on several processes (mpirun -np %d); run %s once\n",
                   dist::size(), argc < 2 ? "lenet" : ("lenet " + std::string(argv[1])).c_str());
    return finish(2);
  }
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
  lenet::cli::add_augment_preview_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return finish(root ? app.exit(e) : 0);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; CLI11's own form spans two.
    if (root) std::fprintf(stderr, "lenet: error: %s (see lenet --help)\n", one_line(e.what()).c_str());
    return finish(2);
  } catch (const lenet::cli::ExitStatus& e) {
    if (root) std::fprintf(stderr, "lenet: %s\n", one_line(e.what()).c_str());
    return finish(e.code);
  } catch (const dist::GroupError& e) {  // every rank has it
    if (root) std::fprintf(stderr, "lenet: error: %s\n", one_line(e.what()).c_str());
    return finish(1);
  } catch (const std::exception& e) {
    if (!several) {
      std::fprintf(stderr, "lenet: error: %s\n", one_line(e.what()).c_str());
      return 1;
    }
    // Only this rank knows: say which one, and end the others (they would wait for it).
    std::fprintf(stderr, "lenet: error: rank %d of %d: %s\n", dist::rank(), dist::size(), one_line(e.what()).c_str());
    std::fflush(stderr);
    dist::abort_all(1);
  }
  return finish(0);
}
