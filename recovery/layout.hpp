#pragma once
// Names inside the recovery directory (default /var/recovery). The content keeps TALM's layout
// (cluster/, etc/, local/, kubelet/, etc.exclude.list, extras.tgz, upgrade-recovery.sh), so the
// same directory reads the same to an operator who knows TALM's backup; manifest.json is ours.
#include <string_view>

namespace lca::recovery::layout {

inline constexpr std::string_view kDefaultDir = "/var/recovery";
inline constexpr std::string_view kCluster = "cluster";  // etcd snapshot + static-pod tarball
inline constexpr std::string_view kEtc = "etc";          // copy of /etc
inline constexpr std::string_view kLocal = "local";      // copy of /usr/local
inline constexpr std::string_view kKubelet = "kubelet";  // copy of /var/lib/kubelet
inline constexpr std::string_view kExcludeList = "etc.exclude.list";
inline constexpr std::string_view kExtras = "extras.tgz";
inline constexpr std::string_view kScript = "upgrade-recovery.sh";
inline constexpr std::string_view kManifest = "manifest.json";
// Restore state, kept across the reboot: TALM's markers, one per line.
inline constexpr std::string_view kProgress = "progress";
// Our step journal beside it: the step running, the steps done, SELinux's mode before we
// changed it, the container ids seen before the restore.
inline constexpr std::string_view kJournal = "restore-journal.json";
// A backup is written here and moved into place only once complete.
inline constexpr std::string_view kStaging = ".backup-staging";
inline constexpr std::string_view kOld = ".backup-old";
// Present while the complete staging backup replaces the old one (the only step that is not
// redone from scratch after a crash: it is finished instead).
inline constexpr std::string_view kSwapJournal = ".backup-swap";
// The backup step running (written before each step runs; removed when the backup is done).
inline constexpr std::string_view kBackupJournal = ".backup-journal.json";

inline constexpr std::string_view kMarkerStarted = "started";
inline constexpr std::string_view kMarkerFiles = "restore_files";
inline constexpr std::string_view kMarkerCluster = "restore_cluster";

}  // namespace lca::recovery::layout
