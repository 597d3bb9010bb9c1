#pragma once
// The pre-upgrade backup to the recovery directory (TALM's launchBackup + take_backup,
// reference §2.2–§2.4), with what TALM gets wrong done right: the space is checked before
// anything is deleted, the old backup stays whole until the new one is complete (written to a
// staging directory on the same filesystem, then moved in), only the booted stateroot's other
// deployments are removed, the MachineConfig extras go into one archive, and a manifest records
// the size and sha256 of every artifact and every file of the copied trees.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "common/step_runner.hpp"
#include "recovery/backup_content.hpp"
#include "recovery/host.hpp"

namespace lca::recovery {

// The backup refused because a restore is under way (its progress file exists). TALM's job
// exits 0 here; we report it distinctly (lcactl exits kExitRestoreInProgress).
class RestoreInProgressError : public Error {
 public:
  explicit RestoreInProgressError(const std::string& msg) : Error(Errc::kConflict, msg) {}
};

inline constexpr int kExitRestoreInProgress = 3;

struct BackupOptions {
  HostConfig host;
  std::filesystem::path dir = "/var/recovery";  // a host path (under host.root)
  std::uint64_t space_margin = kDefaultSpaceMargin;
  // Copied into the backup as upgrade-recovery.sh (0700) when set, so the documented
  // /var/recovery/upgrade-recovery.sh exists. A missing file is a warning.
  std::filesystem::path recovery_script;
  // Pin the booted deployment and remove the other deployments of its stateroot.
  bool pin = true;
  // A step started this many times without finishing (killed during it each time) fails the
  // backup instead of being started again.
  int max_step_attempts = kDefaultMaxStepAttempts;
};

struct BackupResult {
  std::filesystem::path dir;  // the backup, on disk
  std::uint64_t estimated = 0;
  std::uint64_t free_before = 0;
};

// Steps (kBackupSteps in backup.cpp, journaled in <dir>/.backup-journal.json by the common
// step runner), each with the failpoint "recovery.backup.<step>" at its start:
//   recover (finish or discard an interrupted earlier backup), space, pin, etcd, static-pods,
//   exclude-list, etc, usr-local, kubelet, extras, script, manifest, swap.
// A failure or a kill before "swap" leaves the previous backup exactly as it was (the next run
// discards the staging directory); a kill during "swap" is finished by the next run.
BackupResult TakeBackup(const BackupOptions& opts, ProcessRunner& runner);

// The names of kBackupSteps, in order (the crash matrix, the docs check).
std::vector<std::string> BackupStepNames();

}  // namespace lca::recovery
