#include "agent/pivot/init_monitor.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "agent/api/conditions.hpp"
#include "agent/api/ibu.hpp"
#include "agent/pivot/auto_rollback.hpp"
#include "agent/pivot/host_paths.hpp"
#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"

namespace lca::pivot {

namespace {

bool UpgradeCompleted(const std::filesystem::path& object_file) {
  try {
    const auto data = ReadFileIfExists(object_file);
    if (!data) return false;
    const auto ibu = api::FromJson(ParseJson(*data, "ibu.json"));
    if (!ibu.status) return false;
    const auto* c = api::FindCondition(*ibu.status, api::ctype::kUpgradeCompleted);
    return c != nullptr && c->status == api::kTrue;
  } catch (const std::exception& e) {
    // Caught mid-write by a non-atomic writer, or damaged: keep watching, the timeout decides.
    spdlog::warn("init-monitor: reading {}: {}", object_file.string(), e.what());
    return false;
  }
}

}  // namespace

MonitorResult RunInitMonitor(ProcessRunner& runner, const InitMonitorOptions& opts) {
  const auto config = ReadAutoRollbackConfig(opts.state_dir / kAutoRollbackConfigFile);
  if (!config) {
    spdlog::info("init-monitor: no {} in {}: nothing to monitor", kAutoRollbackConfigFile,
                 opts.state_dir.string());
    return MonitorResult::kNothingToMonitor;
  }
  if (!config->monitor_enabled || config->monitor_timeout <= 0) {
    spdlog::info("init-monitor: disabled (auto-rollback-on-failure.lca.openshift.io/init-monitor)");
    return MonitorResult::kNothingToMonitor;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config->monitor_timeout);
  spdlog::info("init-monitor: the upgrade must complete within {}",
               GoDuration(config->monitor_timeout));
  const auto object_file = opts.state_dir / kObjectFile;
  for (;;) {
    if (UpgradeCompleted(object_file)) {
      spdlog::info("init-monitor: upgrade completed; no rollback");
      return MonitorResult::kUpgradeCompleted;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(opts.poll, deadline - now));
  }
  RollbackRequest req;
  req.sysroot = opts.sysroot;
  req.proc_cmdline = ReadFile(opts.proc_cmdline);
  req.booted_state_dir = opts.state_dir;
  req.reboot_command = opts.reboot_command;
  req.message =
      "Rollback due to LCA Init Monitor timeout, after " + GoDuration(config->monitor_timeout);
  InitiateRollback(runner, req);
  return MonitorResult::kRolledBack;
}

}  // namespace lca::pivot
