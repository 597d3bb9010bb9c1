#pragma once
// Automatic rollback after a pivot (reference §5.6, §5.7): the settings Prep snapshotted into
// the new stateroot's autorollback_config.json, and InitiateRollback, used by the init monitor
// (timeout) and by the agent when a post-pivot hook fails.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace lca::pivot {

struct AutoRollbackSettings {
  bool monitor_enabled = false;  // readers default to false: the writer omits a false value
  int64_t monitor_timeout = 1800;
  bool config_enabled = false;
  bool postpivot_enabled = false;
};

// nullopt when the file does not exist (no IBU pivot: nothing to monitor). A file that does not
// parse is lca::Error kInvalid naming it.
std::optional<AutoRollbackSettings> ReadAutoRollbackConfig(const std::filesystem::path& file);

struct RollbackRequest {
  std::filesystem::path sysroot;
  std::string proc_cmdline;                // the booted kernel command line
  std::filesystem::path booted_state_dir;  // the booted stateroot's /var/lib/lca
  std::vector<std::string> reboot_command;
  std::string message;  // "Rollback due to ..."
};

// Makes the stateroot we pivoted from the next boot, records `message` as the Upgrade failure
// in that stateroot's ibu.json (the "Uncontrolled rollback" copy the pre-pivot left there, or
// the booted object if it is missing), and requests a reboot with rationale "rollback".
// Throws lca::Error with context on any failure, before the reboot when it can.
void InitiateRollback(ProcessRunner& runner, const RollbackRequest& req);

// Go's time.Duration text for whole seconds: 1800 -> "30m0s", 60 -> "1m0s", 5 -> "5s",
// 3661 -> "1h1m1s".
std::string GoDuration(int64_t seconds);

}  // namespace lca::pivot
