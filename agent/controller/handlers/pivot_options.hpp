#pragma once
// What the Upgrade and Rollback handlers need to know about the host beyond AgentPaths.
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/pivot/agent_carry.hpp"

namespace lca {

struct PivotOptions {
  // <hooks_dir>/pre-pivot.d and <hooks_dir>/post-pivot.d hold the hooks.
  std::filesystem::path hooks_dir = "/etc/lca/hooks";
  std::chrono::seconds hook_timeout{std::chrono::minutes(10)};
  std::vector<std::string> reboot_command;  // empty = pivot::DefaultRebootCommand()
  std::vector<std::string> systemctl = {"systemctl"};
  pivot::AgentFiles agent_files;
  // The TALM-style recovery backup (recovery/) as the last pre-pivot step before the object is
  // handed over; the settings file as `lcactl recovery` reads it (empty = its default). Its
  // sysroot and kernel command line default to the daemon's.
  bool recovery_backup = false;
  std::filesystem::path recovery_settings;
};

// The reboot request: opts.reboot_command, or pivot::DefaultRebootCommand() when empty.
std::vector<std::string> PivotRebootCommand(const PivotOptions& opts);

}  // namespace lca
