#pragma once
// Pluggable host hooks in place of the Go operator's cluster-side steps (backups, exports,
// manifest applies): executables in a directory, run in name order, each with a timeout, their
// output in the agent's log. A hook that fails stops the sequence.
#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "common/process.hpp"

namespace lca::pivot {

struct HookRun {
  std::filesystem::path dir;               // e.g. /etc/lca/hooks/pre-pivot.d; absent = none
  std::map<std::string, std::string> env;  // LCA_* variables the hooks may use
  std::chrono::seconds timeout{std::chrono::minutes(10)};  // per hook
};

// Runs every regular executable file in `run.dir` (dot files and non-executables are skipped
// with a warning), sorted by name. Returns how many ran. Throws lca::Error
// "hook <path> <exited with status N|timed out ...>: <stderr tail>" on the first failure.
int RunHooks(ProcessRunner& runner, const HookRun& run);

}  // namespace lca::pivot
