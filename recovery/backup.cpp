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
#include "recovery/backup_manifest.hpp"
#include "recovery/etcd.hpp"
#include "recovery/layout.hpp"
#include "recovery/tree_sync.hpp"
#include "stateroot/archive.hpp"
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

// Journals the step before it runs, so a run after a kill can say where the last one stopped.
template <class F>
auto Step(const fs::path& journal, const std::string& name, F&& f) {
  WriteFileAtomic(journal, ToPrettyJson(Json{{"step", name}, {"startedAt", FormatTime(Now())}}),
                  0600);
  LCA_FAILPOINT("recovery.backup." + name);
  const auto start = std::chrono::steady_clock::now();
  spdlog::info("backup: {}", name);
  auto done = [&] {
    spdlog::info("backup: {} done in {} ms", name,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count());
  };
  if constexpr (std::is_void_v<decltype(f())>) {
    WithContext(name, std::forward<F>(f));
    done();
  } else {
    auto r = WithContext(name, std::forward<F>(f));
    done();
    return r;
  }
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

}  // namespace

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
    const fs::path staging = dir / layout::kStaging;
    const fs::path journal = dir / layout::kBackupJournal;
    if (const auto last = ReadFileIfExists(journal)) {
      spdlog::warn(
          "backup: an earlier backup stopped in step {}; the previous complete backup "
          "is still the one in {}",
          ParseJson(*last, journal.string()).value("step", std::string("?")), dir.string());
    }
    auto step = [&](const std::string& name, auto&& f) { return Step(journal, name, f); };

    step("recover", [&] {
      if (fs::exists(dir / layout::kSwapJournal)) {
        spdlog::info("backup: finishing the swap of an earlier backup that was interrupted");
        FinishSwap(dir);
      }
      RemoveAll(staging);
      RemoveAll(dir / layout::kOld);
    });

    const std::vector<std::string> extras = ManagedExtraFiles(host);
    step("space", [&] {
      const SizeEstimate est = EstimateBackupSize(host, extras);
      result.estimated = est.Total();
      result.free_before = FreeBytes(dir);
      spdlog::info(
          "backup: estimated {} (static pods {}, etcd {}, /usr/local {}, /var/lib/kubelet "
          "{}, /etc {}, extras {}); {} free on {}, {} kept free",
          HumanSize(result.estimated), HumanSize(est.static_pods), HumanSize(est.etcd),
          HumanSize(est.usr_local), HumanSize(est.kubelet), HumanSize(est.etc),
          HumanSize(est.extras), HumanSize(result.free_before), dir.string(),
          HumanSize(opts.space_margin));
      if (!EnoughSpace(result.estimated, result.free_before, opts.space_margin)) {
        std::uint64_t old_size = 0;
        for (const auto& n : Names(dir)) {
          if (IsBackupContent(n)) old_size += DirSize(dir / n);
        }
        throw Error(Errc::kConflict,
                    "insufficient disk space to trigger backup: " + HumanSize(result.free_before) +
                        " free on " + dir.string() + ", the backup needs an estimated " +
                        HumanSize(result.estimated) + " plus " + HumanSize(opts.space_margin) +
                        " kept free; nothing was changed" +
                        (old_size > 0 ? " (the previous backup there, " + HumanSize(old_size) +
                                            ", is kept until a new one is complete: remove it "
                                            "yourself if you no longer need it)"
                                      : ""));
      }
    });
    EnsureDir(staging, 0700);

    BackupManifest m;
    m.created_at = FormatTime(Now());
    m.extras = extras;
    if (opts.pin) {
      const auto dep = step("pin", [&] { return PinBooted(host); });
      m.stateroot = dep.stateroot;
      m.checksum = dep.checksum;
      m.serial = dep.serial;
    }
    const std::string stamp = Stamp();
    m.etcd_snapshot = std::string(layout::kCluster) + "/snapshot_" + stamp + ".db";
    m.static_pods = std::string(layout::kCluster) + "/static_kuberesources_" + stamp + ".tar.gz";
    EnsureDir(staging / layout::kCluster, 0700);
    step("etcd", [&] { EtcdSnapshotSave(host.etcd, runner, staging / m.etcd_snapshot); });
    step("static-pods", [&] {
      m.static_pod_dirs = NewestStaticPodDirs(host);
      const fs::path spr = host.Host("/etc/kubernetes/static-pod-resources");
      stateroot::TarWriter tar(staging / m.static_pods, stateroot::Compression::kGzip);
      for (const auto& d : m.static_pod_dirs) tar.AddTree(spr / d, "static-pod-resources/" + d);
      tar.Close();
    });
    step("exclude-list",
         [&] { WriteFileAtomic(staging / layout::kExcludeList, EtcExcludeList(host), 0600); });
    // Full copies; the exclude list applies at restore time, as in TALM.
    step("etc", [&] { SyncTree(host.Host("/etc"), staging / layout::kEtc); });
    step("usr-local", [&] { SyncTree(host.Host("/usr/local"), staging / layout::kLocal); });
    step("kubelet", [&] { SyncTree(host.Host("/var/lib/kubelet"), staging / layout::kKubelet); });
    step("extras", [&] {
      if (extras.empty()) return;
      stateroot::TarWriter tar(staging / layout::kExtras, stateroot::Compression::kGzip);
      for (const auto& p : extras) {
        const std::string rel = ResolveInRoot(host.root, p);
        struct stat st {};
        if (::lstat(host.Host("/" + rel).c_str(), &st) != 0) {
          throw Error(Errc::kNotFound,
                      "Failed to backup additional managed files: " + p +
                          " is listed in /etc/machine-config-daemon/currentconfig but " +
                          host.Host("/" + rel).string() +
                          " cannot be read: " + std::strerror(errno));
        }
        tar.AddPath(host.Host("/" + rel), rel);
      }
      tar.Close();
    });
    step("script", [&] {
      if (opts.recovery_script.empty()) return;
      if (!fs::is_regular_file(opts.recovery_script, ec)) {
        spdlog::warn("backup: {} not found: the backup has no {}", opts.recovery_script.string(),
                     layout::kScript);
        return;
      }
      WriteFileAtomic(staging / layout::kScript, ReadFile(opts.recovery_script), 0700);
    });
    step("manifest", [&] {
      for (const auto& n : Names(staging)) {
        const fs::path p = staging / n;
        if (fs::is_directory(fs::symlink_status(p))) continue;
        m.artifacts.push_back(RecordArtifact(staging, n));
      }
      for (const auto& n : Names(staging / layout::kCluster)) {
        m.artifacts.push_back(RecordArtifact(staging, std::string(layout::kCluster) + "/" + n));
      }
      for (const std::string_view t : {layout::kEtc, layout::kLocal, layout::kKubelet}) {
        m.trees[std::string(t)] = ScanTree(staging / t);
      }
      WriteFileAtomic(staging / layout::kManifest, ToPrettyJson(ManifestToJson(m)), 0600);
      stateroot::SyncFilesystem(staging);
    });
    step("swap", [&] {
      Json j = {{"entries", Names(staging)}};
      WriteFileAtomic(dir / layout::kSwapJournal, ToPrettyJson(j), 0600);
      FinishSwap(dir);
    });
    if (::unlink(journal.c_str()) != 0) throw SystemError("removing " + journal.string(), errno);
    FsyncDir(dir);
    spdlog::info("backup has successfully finished: {}", dir.string());
    return result;
  });
}

}  // namespace lca::recovery
