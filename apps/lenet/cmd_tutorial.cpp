// `lenet tutorial [SECTION...]`: runs the chapter walk-through in examples/.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "tutorial.h"

namespace lenet::cli {
namespace {

std::string known_sections() {
  std::string names;
  for (const auto& s : examples::sections()) names += (names.empty() ? "" : ", ") + s.name;
  return names;
}

}  // namespace

void add_tutorial_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tutorial", "Run the chapter's convolution and LeNet examples");
  auto wanted = std::make_shared<std::vector<std::string>>();
  auto list = std::make_shared<bool>(false);
  auto seed = std::make_shared<uint64_t>(0);
  cmd->add_option("section", *wanted, "Section names or numbers (default: all; --list shows them)");
  cmd->add_flag("--list", *list, "List the sections and their example files");
  cmd->add_option("--seed", *seed, "Seed for the examples that draw random numbers")->capture_default_str();
  cmd->callback([=] {
    const auto& all = examples::sections();
    if (*list) {
      for (size_t i = 0; i < all.size(); ++i)
        std::printf("%2zu  %-15s %-31s %s\n", i + 1, all[i].name.c_str(), all[i].file.c_str(), all[i].title.c_str());
      return;
    }
    // Check every name before running anything.
    std::vector<const examples::Section*> chosen;
    for (const auto& key : *wanted) {
      const auto* s = examples::find_section(key);
      if (!s) throw UsageError("unknown tutorial section '" + key + "'; known: " + known_sections());
      chosen.push_back(s);
    }
    if (chosen.empty())
      for (const auto& s : all) chosen.push_back(&s);
    for (size_t i = 0; i < chosen.size(); ++i) {
      const auto& s = *chosen[i];
      std::cout << (i ? "\n" : "") << "== " << (&s - all.data()) + 1 << ". " << s.name << ": " << s.title << "  ("
                << s.file << ")\n";
      s.run(std::cout, *seed);
    }
    std::cout.flush();
  });
}

}  // namespace lenet::cli
