#pragma once
// `lcactl manifests`: the CRD and RBAC Kubernetes mode needs, for `lcactl manifests | oc apply -f
// -`.
#include <CLI/CLI.hpp>
#include <functional>

namespace lca::cli {

// Adds the subcommand; the returned function prints the manifests when it was chosen (returns
// 0) and returns -1 otherwise. Called after parsing.
std::function<int()> AddManifestsCommand(CLI::App& app);

}  // namespace lca::cli
