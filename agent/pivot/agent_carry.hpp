#pragma once
// Makes sure the agent runs in the new stateroot after the pivot (issue [4/7] item 1): a seed
// built from a host without lca lacks its binaries, units and config, and then nobody would
// confirm the upgrade (the init monitor would roll it back after its timeout).
//
// What the booted deployment has and the new one lacks is carried over:
//  * binaries (e.g. usr/bin/lifecycle-agent) into the new stateroot's var/lib/lca/bin, never
//    into the new deployment's /usr, whose files are hardlinks into the ostree repo;
//  * unit files into the new deployment's etc/systemd/system, ExecStart paths rewritten to the
//    carried binaries, and enabled (multi-user.target.wants symlinks);
//  * the config dir (etc/lca, without secrets/) file by file, never overwriting the seed's.
#include <filesystem>
#include <string>
#include <vector>

namespace lca::pivot {

struct AgentFiles {
  std::vector<std::string> binaries = {"usr/bin/lifecycle-agent", "usr/bin/lcactl"};
  std::vector<std::string> units = {"lifecycle-agent.service", "lca-init-monitor.service"};
  std::string config_dir = "etc/lca";
};

struct CarryReport {
  std::vector<std::string> carried;  // what was copied or written, relative descriptions
};

// `booted_deployment` and `new_deployment` are deployment roots (…/deploy/<csum>.<serial>);
// `new_stateroot` is <sysroot>/ostree/deploy/<new>. Idempotent: a second run changes nothing.
CarryReport CarryAgent(const std::filesystem::path& booted_deployment,
                       const std::filesystem::path& new_deployment,
                       const std::filesystem::path& new_stateroot, const AgentFiles& files = {});

}  // namespace lca::pivot
