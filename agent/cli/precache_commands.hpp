#pragma once
// `lcactl precache --config DIR`: TALM's pre-cache job on the node (precache/job.hpp).
// `lcactl mirrors render -f FILE...`: ICSP/IDMS -> registries.conf (precache/mirrors.hpp).
// Local commands: no daemon involved.
#include <CLI/CLI.hpp>
#include <functional>

namespace lca::cli {

// Adds both subcommands to `app`; the returned function runs the chosen one after parsing and
// returns its exit code, or -1 when neither was chosen.
std::function<int()> AddPrecacheCommands(CLI::App& app);

}  // namespace lca::cli
