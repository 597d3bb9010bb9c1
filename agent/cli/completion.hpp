#pragma once
// `lcactl completion bash|zsh`: both scripts are generated from the CLI11 command tree, so a
// new command or option is completed without anyone remembering to add it. What the tree
// cannot know (the values of -o, resource names, annotation keys) comes from one table of
// hints in completion.cpp, shared by both shells.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace lca::cli {

// One command of the tree: "" for lcactl itself, "seed create" for a nested one.
struct CompletionCommand {
  std::string path;
  std::vector<std::string> subcommands;
  std::vector<std::string> options;        // every -x / --xyz spelling, flags included
  std::vector<std::string> value_options;  // the spellings that take a value
};

// Every command of `app`, depth first, in the order they were added.
std::vector<CompletionCommand> CompletionCommands(const CLI::App& app);

std::string BashCompletion(const CLI::App& app);
std::string ZshCompletion(const CLI::App& app);

}  // namespace lca::cli
