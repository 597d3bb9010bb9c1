#pragma once
// The restore engine behind upgrade-recovery.sh (reference §3): TALM's options, validation
// order, progress markers and phases, with every host step journaled before it runs, SELinux
// put back on every exit path, the backup checked against its manifest before anything is
// touched, and the restored trees compared with it afterwards.
//
//   phase 1 (restore_files, before the reboot): stop kubelet and crio, wipe crio, /usr/local,
//     /etc (minus etc.exclude.list), extras.tgz, verify, disable kubelet -> "reboot now"
//   phase 2 (restore_cluster, after it): /var/lib/kubelet, verify, crio, static-pod resources
//     and manifests, etcd data from the snapshot, start kubelet and crio, wait for containers
//   phase 3: post-restore hooks (the cluster redeploys that need the API), then the progress
//     file goes away.
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "common/step_runner.hpp"
#include "recovery/host.hpp"

namespace lca::recovery {

struct RestoreOptions {
  HostConfig host;
  std::filesystem::path dir = "/var/recovery";  // host path
  bool force = false;    // an unpinned booted deployment is a warning, not an error
  bool step = false;     // stop after each phase; allowed while a restore is in progress
  bool resume = false;   // continue after the last recorded phase (needed after the reboot)
  bool restart = false;  // forget the progress first
  // Executables run in name order in phase 3 (host path), with LCA_RECOVERY_DIR set.
  std::filesystem::path hooks_dir = "/etc/lca/recovery-hooks.d";
  // Containers that must run again (new ids) before phase 2 counts as done; TALM's five.
  std::vector<std::string> wait_containers{"etcd", "etcd-operator", "kube-apiserver-operator",
                                           "kube-controller-manager-operator",
                                           "kube-scheduler-operator-container"};
  std::chrono::milliseconds wait_timeout{std::chrono::seconds(1200)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(10)};
  // A step started this many times without finishing (killed during it each time) is not
  // started again: the restore fails naming it (--restart starts over).
  int max_step_attempts = kDefaultMaxStepAttempts;
};

enum class RestoreOutcome {
  kRebootRequired,  // phase 1 done: reboot, then --resume
  kStageComplete,   // --step stopped after a phase
  kComplete,        // phase 3 done, progress file removed
};

// Refusals the operator fixes by choosing an option (exit 1, message on stdout as in TALM).
class RestoreRefusedError : public Error {
 public:
  explicit RestoreRefusedError(const std::string& msg) : Error(Errc::kConflict, msg) {}
};

// Runs what is left of the restore. Steps have the failpoint "recovery.restore.<step>" at
// their start (files.stop-services, files.wipe-crio, files.usr-local, files.etc,
// files.extras, files.verify, files.disable-kubelet, cluster.kubelet, cluster.verify,
// cluster.start-crio, cluster.record-containers, cluster.static-pods, cluster.etcd,
// cluster.start-services, cluster.wait, post.hooks).
RestoreOutcome RunRestore(const RestoreOptions& opts, ProcessRunner& runner);

// The names of the restore's step tables (restore.cpp: files, cluster, post), in order.
std::vector<std::string> RestoreStepNames();

}  // namespace lca::recovery
