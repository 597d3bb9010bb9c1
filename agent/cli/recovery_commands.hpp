#pragma once
// `lcactl recovery backup` and `lcactl recovery restore`: local commands (no daemon involved)
// over recovery/, and what scripts/upgrade-recovery.sh calls.
#include <CLI/CLI.hpp>
#include <memory>

namespace lca::cli {

class RecoveryCommands {
 public:
  virtual ~RecoveryCommands() = default;
  // True when the command line selected one of the recovery subcommands.
  virtual bool Selected() const = 0;
  // Runs it; returns the exit code (0 ok, 1 error, 3 backup refused: a restore is in progress).
  virtual int Run() = 0;
};

// Registers `recovery backup|restore` on `app` (before it parses).
std::unique_ptr<RecoveryCommands> AddRecoveryCommands(CLI::App& app);

}  // namespace lca::cli
