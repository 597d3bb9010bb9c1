#include "recovery/backup.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include "common/atomic_file.hpp"
#include "common/failpoint.hpp"
#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"
#include "formats/archive.hpp"
#include "recovery/backup_manifest.hpp"
#include "recovery/etcd.hpp"
#include "recovery/layout.hpp"
#include "recovery/tree_sync.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"

namespace lca::recovery {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  if (ec) throw SystemError("listing " + dir.string(), ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

// What of the recovery directory belongs to a backup: everything but our dot-entries and the
// restore's state.
bool IsBackupContent(const std::string& name) {
  return !name.empty() && name.front() != '.' && name != layout::kProgress &&
         name != layout::kJournal;
}

void Rename(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw SystemError("renaming " + from.string() + " to " + to.string(), ec.value());
}

// Moves the complete staging backup into place, keeping the old one aside until every new
// entry is in. Safe to run again after a kill at any point: each entry moves at most once.
void FinishSwap(const fs::path& dir) {
  const fs::path staging = dir / layout::kStaging, old = dir / layout::kOld;
  const fs::path journal = dir / layout::kSwapJournal;
  const Json j = ParseJson(ReadFile(journal), journal.string());
  const auto entries = j.at("entries").get<std::vector<std::string>>();
  const std::set<std::string> fresh(entries.begin(), entries.end());
  EnsureDir(old, 0700);
  for (const auto& name : entries) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(staging / name, ec))) continue;  // already moved in
    if (fs::exists(fs::symlink_status(dir / name, ec))) {
      if (fs::exists(fs::symlink_status(old / name, ec))) {
        RemoveAll(dir / name);
      } else {
        Rename(dir / name, old / name);
      }
    }
    LCA_FAILPOINT("recovery.backup.swap-entry");
    Rename(staging / name, dir / name);
  }
  // Old content the new backup does not have (an extras.tgz no longer needed).
  for (const auto& name : Names(dir)) {
    if (IsBackupContent(name) && fresh.count(name) == 0) {
      std::error_code ec;
      if (fs::exists(fs::symlink_status(old / name, ec))) {
        RemoveAll(dir / name);
      } else {
        Rename(dir / name, old / name);
      }
    }
  }
  FsyncDir(dir);
  RemoveAll(old);
  RemoveAll(staging);
  if (::unlink(journal.c_str()) != 0 && errno != ENOENT) {
    throw SystemError("removing " + journal.string(), errno);
  }
  FsyncDir(dir);
}

std::string Stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d_%H%M%S", &tm);
  return buf;
}

// Pins the booted deployment and undeploys the other deployments of its stateroot. Other
// stateroots (an IBU's new one) are never touched.
stateroot::Deployment PinBooted(const HostConfig& host) {
  const fs::path cmdline_file = host.ProcCmdline();
  const std::string cmdline = ReadFile(cmdline_file);
  const fs::path sysroot = host.Sysroot();
  const auto booted = stateroot::FindBooted(sysroot, cmdline);
  if (!booted) {
    throw Error(Errc::kInvalid, "the kernel command line (" + cmdline_file.string() +
                                    ") has no ostree= argument: the host was not booted from "
                                    "ostree, so there is no deployment to pin");
  }
  stateroot::OstreeSysroot sr(sysroot);
  auto lock = sr.TryLock();
  for (const auto& d : sr.Deployments()) {
    if (d.stateroot != booted->stateroot || stateroot::SameDeployment(d, *booted)) continue;
    spdlog::info("backup: undeploying {} {}.{} (not booted, same stateroot)", d.stateroot,
                 d.checksum, d.serial);
    sr.Undeploy(d, booted);
  }
  auto dep = sr.Booted(*booted);
  if (!dep) {
    throw Error(Errc::kNotFound, "the booted deployment " + booted->stateroot + " " +
                                     booted->checksum + "." + std::to_string(booted->serial) +
                                     " is not in " + sysroot.string());
  }
  if (!dep->pinned) sr.SetPinned(*dep, true);
  spdlog::info("backup: pinned {} {}.{}", dep->stateroot, dep->checksum, dep->serial);
  return *dep;
}

// What every backup step works with.
struct BackupRun {
  const BackupOptions& opts;
  ProcessRunner& runner;
  const HostConfig& host;
  fs::path dir;
  fs::path staging;
  std::vector<std::string> extras;
  BackupManifest m;
  BackupResult& result;
};

// Finishes or discards what an interrupted earlier backup left.
void Recover(BackupRun& b) {
  if (fs::exists(b.dir / layout::kSwapJournal)) {
    spdlog::info("backup: finishing the swap of an earlier backup that was interrupted");
    FinishSwap(b.dir);
  }
  RemoveAll(b.staging);
  RemoveAll(b.dir / layout::kOld);
}

void CheckSpace(BackupRun& b) {
  const SizeEstimate est = EstimateBackupSize(b.host, b.extras);
  b.result.estimated = est.Total();
  b.result.free_before = FreeBytes(b.dir);
  spdlog::info(
      "backup: estimated {} (static pods {}, etcd {}, /usr/local {}, /var/lib/kubelet "
      "{}, /etc {}, extras {}); {} free on {}, {} kept free",
      HumanSize(b.result.estimated), HumanSize(est.static_pods), HumanSize(est.etcd),
      HumanSize(est.usr_local), HumanSize(est.kubelet), HumanSize(est.etc), HumanSize(est.extras),
      HumanSize(b.result.free_before), b.dir.string(), HumanSize(b.opts.space_margin));
  if (!EnoughSpace(b.result.estimated, b.result.free_before, b.opts.space_margin)) {
    std::uint64_t old_size = 0;
    for (const auto& n : Names(b.dir)) {
      if (IsBackupContent(n)) old_size += DirSize(b.dir / n);
    }
    throw Error(Errc::kConflict,
                "insufficient disk space to trigger backup: " + HumanSize(b.result.free_before) +
                    " free on " + b.dir.string() + ", the backup needs an estimated " +
                    HumanSize(b.result.estimated) + " plus " + HumanSize(b.opts.space_margin) +
                    " kept free; nothing was changed" +
                    (old_size > 0 ? " (the previous backup there, " + HumanSize(old_size) +
                                        ", is kept until a new one is complete: remove it "
                                        "yourself if you no longer need it)"
                                  : ""));
  }
  EnsureDir(b.staging, 0700);
}

void Pin(BackupRun& b) {
  if (!b.opts.pin) return;
  const auto dep = PinBooted(b.host);
  b.m.stateroot = dep.stateroot;
  b.m.checksum = dep.checksum;
  b.m.serial = dep.serial;
}

void Etcd(BackupRun& b) {
  const std::string stamp = Stamp();
  b.m.etcd_snapshot = std::string(layout::kCluster) + "/snapshot_" + stamp + ".db";
  b.m.static_pods = std::string(layout::kCluster) + "/static_kuberesources_" + stamp + ".tar.gz";
  EnsureDir(b.staging / layout::kCluster, 0700);
  EtcdSnapshotSave(b.host.etcd, b.runner, b.staging / b.m.etcd_snapshot);
}

void StaticPods(BackupRun& b) {
  b.m.static_pod_dirs = NewestStaticPodDirs(b.host);
  const fs::path spr = b.host.Host("/etc/kubernetes/static-pod-resources");
  stateroot::TarWriter tar(b.staging / b.m.static_pods, stateroot::Compression::kGzip);
  for (const auto& d : b.m.static_pod_dirs) tar.AddTree(spr / d, "static-pod-resources/" + d);
  tar.Close();
}

void ExcludeList(BackupRun& b) {
  WriteFileAtomic(b.staging / layout::kExcludeList, EtcExcludeList(b.host), 0600);
}

// Full copies; the exclude list applies at restore time, as in TALM.
void Etc(BackupRun& b) { SyncTree(b.host.Host("/etc"), b.staging / layout::kEtc); }
void UsrLocal(BackupRun& b) { SyncTree(b.host.Host("/usr/local"), b.staging / layout::kLocal); }
void Kubelet(BackupRun& b) {
  SyncTree(b.host.Host("/var/lib/kubelet"), b.staging / layout::kKubelet);
}

void Extras(BackupRun& b) {
  if (b.extras.empty()) return;
  stateroot::TarWriter tar(b.staging / layout::kExtras, stateroot::Compression::kGzip);
  for (const auto& p : b.extras) {
    const std::string rel = ResolveInRoot(b.host.root, p);
    const fs::path file = b.host.Host("/" + rel);
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
      throw Error(Errc::kNotFound, "Failed to backup additional managed files: " + p +
                                       " is listed in /etc/machine-config-daemon/currentconfig "
                                       "but " +
                                       file.string() + " cannot be read: " + std::strerror(errno));
    }
    tar.AddPath(file, rel);
  }
  tar.Close();
}

void Script(BackupRun& b) {
  if (b.opts.recovery_script.empty()) return;
  std::error_code ec;
  if (!fs::is_regular_file(b.opts.recovery_script, ec)) {
    spdlog::warn("backup: {} not found: the backup has no {}", b.opts.recovery_script.string(),
                 layout::kScript);
    return;
  }
  WriteFileAtomic(b.staging / layout::kScript, ReadFile(b.opts.recovery_script), 0700);
}

void Manifest(BackupRun& b) {
  for (const auto& n : Names(b.staging)) {
    const fs::path p = b.staging / n;
    if (fs::is_directory(fs::symlink_status(p))) continue;
    b.m.artifacts.push_back(RecordArtifact(b.staging, n));
  }
  for (const auto& n : Names(b.staging / layout::kCluster)) {
    b.m.artifacts.push_back(RecordArtifact(b.staging, std::string(layout::kCluster) + "/" + n));
  }
  for (const std::string_view t : {layout::kEtc, layout::kLocal, layout::kKubelet}) {
    b.m.trees[std::string(t)] = ScanTree(b.staging / t);
  }
  WriteFileAtomic(b.staging / layout::kManifest, ToPrettyJson(ManifestToJson(b.m)), 0600);
  stateroot::SyncFilesystem(b.staging);
}

void Swap(BackupRun& b) {
  Json j = {{"entries", Names(b.staging)}};
  WriteFileAtomic(b.dir / layout::kSwapJournal, ToPrettyJson(j), 0600);
  FinishSwap(b.dir);
}

// Every step runs on every backup (a backup is never resumed: "recover" discards what an
// interrupted one left); the journal says where the last one stopped.
constexpr Step<BackupRun> kBackupSteps[] = {
    {"recover", 1, &Recover}, {"space", 1, &CheckSpace},       {"pin", 1, &Pin},
    {"etcd", 5, &Etcd},       {"static-pods", 2, &StaticPods}, {"exclude-list", 1, &ExcludeList},
    {"etc", 3, &Etc},         {"usr-local", 2, &UsrLocal},     {"kubelet", 3, &Kubelet},
    {"extras", 1, &Extras},   {"script", 1, &Script},          {"manifest", 3, &Manifest},
    {"swap", 1, &Swap},
};

// The step an earlier backup stopped in (killed or failed), if any.
std::optional<std::string> StoppedIn(const StepJournal& journal) {
  for (const auto& s : journal.steps()) {
    if (s.state != "done") return s.name;
  }
  return std::nullopt;
}

StepPolicy BackupPolicy(const BackupOptions& opts) {
  StepPolicy policy;
  policy.failpoint_prefix = "recovery.backup.";
  policy.log_label = "backup";
  policy.skip_done = false;
  policy.name_in_errors = true;
  policy.max_attempts = opts.max_step_attempts;
  policy.give_up_hint = "find out why the backup stops there; the previous backup is untouched";
  return policy;
}

}  // namespace

std::vector<std::string> BackupStepNames() { return StepNames<BackupRun>(kBackupSteps); }

BackupResult TakeBackup(const BackupOptions& opts, ProcessRunner& runner) {
  const HostConfig& host = opts.host;
  const fs::path dir = host.Host(opts.dir);
  BackupResult result;
  result.dir = dir;
  std::error_code ec;
  if (fs::exists(dir / layout::kProgress, ec) || ec) {
    throw RestoreInProgressError(
        "Cannot take backup. Recovery is currently in progress (" +
        (dir / layout::kProgress).string() +
        " exists): finish it with upgrade-recovery.sh --resume, or restart it with --restart; "
        "the backup it restores from is left untouched");
  }
  return WithContext("backup to " + dir.string(), [&] {
    EnsureDir(dir, 0700);
    StepJournal journal(dir, std::string(layout::kBackupJournal));
    if (const auto last = StoppedIn(journal)) {
      spdlog::warn(
          "backup: an earlier backup stopped in step {}; the previous complete backup "
          "is still the one in {}",
          *last, dir.string());
    }
    BackupRun b{opts, runner, host, dir, dir / layout::kStaging, {}, {}, result};
    b.extras = ManagedExtraFiles(host);
    b.m.created_at = FormatTime(Now());
    b.m.extras = b.extras;
    StepRunner(journal, BackupPolicy(opts)).Run<BackupRun>(kBackupSteps, b);
    journal.Clear();
    spdlog::info("backup has successfully finished: {}", dir.string());
    return result;
  });
}

}  // namespace lca::recovery
