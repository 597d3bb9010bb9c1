#include "agent/cli/manifests_command.hpp"

#include <iostream>
#include <memory>

#include "manifests/embedded.hpp"

namespace lca::cli {

std::function<int()> AddManifestsCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "manifests",
      "Print the ImageBasedUpgrade CRD and the agent's RBAC for the cluster "
      "(lcactl manifests | oc apply -f -); the files are also in /usr/share/lca/manifests");
  auto list = std::make_shared<bool>(false);
  cmd->add_flag("--list", *list, "list the files instead of printing them");
  return [cmd, list]() -> int {
    if (!*cmd) return -1;
    if (*list) {
      for (const auto& m : manifests::All()) std::cout << m.file << "\n";
      return 0;
    }
    std::cout << manifests::Concatenated();
    return std::cout.good() ? 0 : 1;
  };
}

}  // namespace lca::cli
