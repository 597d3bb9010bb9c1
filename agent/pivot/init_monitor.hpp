#pragma once
// `lcactl init-monitor --monitor` (reference §5.5), run by lca-init-monitor.service in the new
// stateroot: if the upgrade is not confirmed within monitor_timeout seconds of its start, roll
// back to the old stateroot. Unlike the Go monitor it also watches the object and exits as soon
// as UpgradeCompleted is True, so a completion that could not stop the unit still wins the race.
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace lca::pivot {

struct InitMonitorOptions {
  std::filesystem::path sysroot = "/";
  std::filesystem::path proc_cmdline = "/proc/cmdline";
  std::filesystem::path state_dir = "/var/lib/lca";  // the booted stateroot's
  std::vector<std::string> reboot_command;
  std::chrono::milliseconds poll{1000};
};

enum class MonitorResult { kNothingToMonitor, kUpgradeCompleted, kRolledBack };

// Blocks until one of the results; throws lca::Error when the config is unreadable or the
// rollback fails.
MonitorResult RunInitMonitor(ProcessRunner& runner, const InitMonitorOptions& opts);

}  // namespace lca::pivot
