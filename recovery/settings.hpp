#pragma once
// The recovery settings file (JSON, recovery/README.md), read the same way by `lcactl recovery`
// and by the daemon's pre-pivot backup (upgrade.recovery-backup), so one file configures both.
#include <filesystem>
#include <string>

#include "common/json_yaml.hpp"
#include "recovery/backup.hpp"
#include "recovery/host.hpp"

namespace lca::recovery {

inline constexpr const char* kDefaultSettingsFile = "/etc/lca/recovery.json";
inline constexpr const char* kDefaultRecoveryScript = "/usr/libexec/lca/upgrade-recovery.sh";

struct Settings {
  HostConfig host;
  Json raw = Json::object();   // the whole file, for the command-specific fields
  std::filesystem::path file;  // where it came from; empty = defaults only
};

// `file` empty: kDefaultSettingsFile when it exists, else the defaults. A named file that is
// missing, not JSON or has an unknown host field is an lca::Error naming the file.
Settings LoadSettings(const std::filesystem::path& file);

// The backup as the settings describe it: backupDir (default /var/recovery),
// backupSpaceMarginBytes, backupRecoveryScript (default kDefaultRecoveryScript).
BackupOptions BackupOptionsFrom(const Settings& settings);

}  // namespace lca::recovery
