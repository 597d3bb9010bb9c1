#pragma once
// `lcactl init-monitor --monitor`: what lca-init-monitor.service runs in the new stateroot.
#include <CLI/CLI.hpp>
#include <functional>

namespace lca::cli {

// Adds the subcommand to `app`; the returned function runs it when it was chosen (returns the
// exit code) and is only called after parsing.
std::function<int()> AddInitMonitorCommand(CLI::App& app);

}  // namespace lca::cli
