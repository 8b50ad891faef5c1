// `lenet info`: prints an architecture's layers, output shapes and parameter count.
#include <cstdio>

#include <string>

#include "commands.h"
#include "lenet/isa.h"
#include "lenet/nn.h"

namespace lenet::cli {

std::string kernels_line() { return "kernels: " + active_isa() + " (" + std::to_string(active_lanes()) + " lanes)"; }

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show an architecture's layers and output shapes");
  auto arch = std::make_shared<std::string>("lenet");
  auto input = std::make_shared<std::string>("1x28x28");
  auto classes = std::make_shared<int>(10);
  cmd->add_option("--arch", *arch, "Built-in name (lenet, lenet-max, lenet-relu, mlp) or a layer spec")
      ->capture_default_str();
  cmd->add_option("--input", *input, "Input shape CxHxW")->capture_default_str();
  cmd->add_option("--classes", *classes, "Number of classes")->capture_default_str();
  cmd->callback([=] {
    int c = 0, h = 0, w = 0;
    char tail = 0;
    if (std::sscanf(input->c_str(), "%dx%dx%d%c", &c, &h, &w, &tail) != 3)
      throw UsageError("--input: '" + *input + "' is not a shape CxHxW such as 1x28x28");
    Sequential model = build_model(*arch, {c, h, w}, *classes, nullptr);
    std::printf("architecture: %s\n", model.spec().c_str());
    for (size_t i = 0; i < model.size(); ++i) std::printf("  %zu  %s\n", i, model[i].describe().c_str());
    std::printf("\n%s", model.summary({1, c, h, w}).c_str());
    std::printf("\nparameters: %lld\n", static_cast<long long>(model.parameter_count()));
    std::printf("%s\n", kernels_line().c_str());
  });
}

}  // namespace lenet::cli
