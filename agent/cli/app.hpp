#pragma once
// lcactl's command tree (CLI11) and what each command runs. Built as a library so that the
// completion scripts (agent/cli/completion.hpp) and the tests see the very tree lcactl parses.
#include <CLI/CLI.hpp>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lca::cli {

class Lcactl {
 public:
  Lcactl();
  ~Lcactl();
  Lcactl(const Lcactl&) = delete;
  Lcactl& operator=(const Lcactl&) = delete;

  CLI::App& app();
  // Parses the command line (argv[0] excluded) and runs the chosen command: the exit code.
  int Main(std::vector<std::string> args, std::ostream& out, std::ostream& err);

  // The option values the tree binds (app.cpp); public only for app.cpp's builders.
  struct State;

 private:
  std::unique_ptr<State> s_;
  int Run(std::ostream& out, std::ostream& err);
};

// kubectl's words for a command word that names no command: `error: unknown command "foo"
// for "lcactl"` (or "lcactl seed" under a command group). nullopt when every command word is
// known; arguments of a command without subcommands are its own business.
std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args);

// kubectl (pflag) reads `-p='{"spec": ...}'` as -p with the JSON; CLI11 would keep the '='.
// Splits "-X=value" into "-X", "value" for the short options of `app`'s tree that take a
// value (not after "--", and not when the word is itself the value of the option before).
std::vector<std::string> NormalizeArgs(const CLI::App& app, std::vector<std::string> args);

}  // namespace lca::cli
