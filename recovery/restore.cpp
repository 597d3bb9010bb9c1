#include "recovery/restore.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"
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

// <dir>/progress: TALM's markers, one per line, no duplicates.
class Progress {
 public:
  explicit Progress(fs::path file) : file_(std::move(file)) {}
  bool Exists() const {
    std::error_code ec;
    return fs::exists(file_, ec);
  }
  bool Has(std::string_view marker) const {
    const auto text = ReadFileIfExists(file_);
    if (!text) return false;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      if (line == marker) return true;
    }
    return false;
  }
  void Record(std::string_view marker) {
    if (Has(marker)) return;
    std::string text = ReadFileIfExists(file_).value_or("");
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += std::string(marker) + "\n";
    WriteFileAtomic(file_, text, 0600);
  }
  void Remove() { RemoveFile(file_); }
  static void RemoveFile(const fs::path& f) {
    if (::unlink(f.c_str()) != 0 && errno != ENOENT)
      throw SystemError("removing " + f.string(), errno);
    FsyncDir(f.parent_path());
  }

 private:
  fs::path file_;
};

// SELinux permissive for the duration of a phase, and back to the mode it had before the
// restore began on every way out: return, exception, and (through the journal, which keeps
// the original mode) the next run after a kill.
class Permissive {
 public:
  Permissive(HostCommands& cmd, StepJournal& journal) : cmd_(cmd), journal_(journal) {
    if (!journal_.extra().contains("selinux")) {
      std::string mode = "Disabled";
      try {
        const ProcessResult r = cmd_.Run({"getenforce"});
        if (r.ok()) {
          mode = r.stdout_data;
          while (!mode.empty() && std::isspace(static_cast<unsigned char>(mode.back())))
            mode.pop_back();
        } else {
          spdlog::warn("getenforce: {}: treating SELinux as disabled", r.Describe());
        }
      } catch (const Error& e) {
        spdlog::warn("getenforce: {}: treating SELinux as disabled", e.what());
      }
      journal_.extra()["selinux"] = mode;
      journal_.Save();
    }
    enforcing_ = journal_.extra()["selinux"] == "Enforcing";
    if (enforcing_) {
      WithContext("Failed to enter permissive mode", [&] { cmd_.Check({"setenforce", "0"}); });
    }
  }
  ~Permissive() {
    try {
      Leave();
    } catch (const std::exception& e) {
      spdlog::error("setenforce 1: {}: SELinux is still permissive, run `setenforce 1`", e.what());
    }
  }
  Permissive(const Permissive&) = delete;
  Permissive& operator=(const Permissive&) = delete;

  void Leave() {
    if (!enforcing_) return;
    enforcing_ = false;
    cmd_.Check({"setenforce", "1"});
  }

 private:
  HostCommands& cmd_;
  StepJournal& journal_;
  bool enforcing_ = false;
};

// What every restore step works with.
struct RestoreRun {
  const RestoreOptions& opts;
  const HostConfig& host;
  fs::path dir;
  HostCommands& cmd;
  ProcessRunner& runner;
  const BackupManifest& manifest;
  StepJournal& journal;
  std::optional<PathFilter> exclude;  // etc.exclude.list, read when a step needs it

  const PathFilter& Exclude() {
    if (!exclude) exclude = PathFilter::FromList(ReadFile(dir / layout::kExcludeList));
    return *exclude;
  }
};

void Verify(RestoreRun& r, const std::string& name, const fs::path& tree,
            const PathFilter* exclude) {
  const auto diffs = CompareTrees(r.manifest.trees.at(name), ScanTree(tree, exclude), exclude);
  if (diffs.empty()) {
    spdlog::info("restore: {} matches the backup", tree.string());
    return;
  }
  std::string text;
  for (const auto& d : diffs) text += "\n  " + d;
  throw Error(Errc::kIo, tree.string() + " differs from the backup after the restore:" + text);
}

Json Containers(RestoreRun& r) {
  const ProcessResult res = r.cmd.Check({"crictl", "ps", "-a", "-o", "json"});
  const Json j = ParseJson(res.stdout_data, "crictl ps -o json");
  if (!j.contains("containers") || !j["containers"].is_array()) return Json::array();
  return j["containers"];
}

std::string IdOf(const Json& containers, const std::string& name, bool running = false) {
  for (const auto& c : containers) {
    if (!c.is_object() || !c.contains("metadata")) continue;
    if (c["metadata"].value("name", std::string()) != name) continue;
    if (running && c.value("state", std::string()) != "CONTAINER_RUNNING") continue;
    return c.value("id", std::string());
  }
  return {};
}

// ---- phase 1: the files, before the reboot ----

void StopServices(RestoreRun& r) {
  r.cmd.BestEffort({"systemctl", "stop", "kubelet.service"});
  r.cmd.BestEffort({"crictl", "rmp", "-fa"});
  r.cmd.BestEffort({"systemctl", "stop", "crio.service"});
}

void WipeCrio(RestoreRun& r) { r.cmd.BestEffort({"crio", "wipe", "-f"}); }

void UsrLocal(RestoreRun& r) { SyncTree(r.dir / layout::kLocal, r.host.Host("/usr/local")); }

void Etc(RestoreRun& r) {
  SyncTree(r.dir / layout::kEtc, r.host.Host("/etc"), SyncOptions{.exclude = &r.Exclude()});
}

void Extras(RestoreRun& r) {
  const fs::path extras = r.dir / layout::kExtras;
  std::error_code ec;
  if (!fs::exists(extras, ec)) return;
  stateroot::FileSource src(extras);
  stateroot::ExtractTar(src, extras.string(), r.host.root);
}

void VerifyFiles(RestoreRun& r) {
  stateroot::SyncFilesystem(r.host.Host("/etc"));
  Verify(r, std::string(layout::kLocal), r.host.Host("/usr/local"), nullptr);
  Verify(r, std::string(layout::kEtc), r.host.Host("/etc"), &r.Exclude());
}

void DisableKubelet(RestoreRun& r) {
  r.cmd.Check({"systemctl", "daemon-reload"});
  r.cmd.Check({"systemctl", "disable", "kubelet.service"});
}

constexpr Step<RestoreRun> kFilesSteps[] = {
    {"files.stop-services", 1, &StopServices},
    {"files.wipe-crio", 1, &WipeCrio},
    {"files.usr-local", 2, &UsrLocal},
    {"files.etc", 3, &Etc},
    {"files.extras", 1, &Extras},
    {"files.verify", 2, &VerifyFiles},
    {"files.disable-kubelet", 1, &DisableKubelet},
};

// ---- phase 2: the cluster, after the reboot ----

void Kubelet(RestoreRun& r) { SyncTree(r.dir / layout::kKubelet, r.host.Host("/var/lib/kubelet")); }

void VerifyKubelet(RestoreRun& r) {
  stateroot::SyncFilesystem(r.host.Host("/var/lib/kubelet"));
  Verify(r, std::string(layout::kKubelet), r.host.Host("/var/lib/kubelet"), nullptr);
}

void StartCrio(RestoreRun& r) {
  if (!r.cmd.Run({"systemctl", "-q", "is-active", "crio.service"}).ok()) {
    r.cmd.Check({"systemctl", "start", "crio.service"});
  }
}

void RecordContainers(RestoreRun& r) {
  Json ids = Json::object();
  const Json running = Containers(r);
  for (const auto& name : r.opts.wait_containers) ids[name] = IdOf(running, name);
  r.journal.extra()["containers"] = ids;
  r.journal.Save();
}

void StaticPods(RestoreRun& r) {
  const fs::path kube = r.host.Host("/etc/kubernetes");
  EnsureDir(kube, 0755);
  stateroot::FileSource src(r.dir / r.manifest.static_pods);
  stateroot::ExtractTar(src, r.manifest.static_pods, kube);
  // The pods' manifests as they were: kubelet starts them from here.
  EnsureDir(kube / "manifests", 0755);
  for (const auto& d : r.manifest.static_pod_dirs) {
    const std::string pod = d.substr(0, d.rfind('-'));  // etcd-pod-7 -> etcd-pod
    const fs::path yaml = kube / "static-pod-resources" / d / (pod + ".yaml");
    const auto text = ReadFileIfExists(yaml);
    if (!text) {
      spdlog::warn("{} has no {}.yaml: its static pod manifest is left as it is", d, pod);
      continue;
    }
    WriteFileAtomic(kube / "manifests" / (pod + ".yaml"), *text, 0644);
  }
}

void EtcdData(RestoreRun& r) {
  EtcdRestoreDataDir(r.host.etcd, r.runner, r.dir / r.manifest.etcd_snapshot,
                     r.host.Host("/var/lib/etcd"), r.host.Host("/var/lib/etcd-backup"));
}

void StartServices(RestoreRun& r) {
  r.cmd.Check({"systemctl", "restart", "kubelet.service"});
  r.cmd.Check({"systemctl", "enable", "kubelet.service"});
  r.cmd.Check({"systemctl", "restart", "crio.service"});
}

void WaitForContainers(RestoreRun& r) {
  const Json before = r.journal.extra().value("containers", Json::object());
  const auto deadline = std::chrono::steady_clock::now() + r.opts.wait_timeout;
  for (const auto& name : r.opts.wait_containers) {
    const std::string old_id = before.value(name, std::string());
    spdlog::info("waiting for {} to run (a container other than \"{}\")", name, old_id);
    for (;;) {
      const std::string id = IdOf(Containers(r), name, true);
      if (!id.empty() && id != old_id) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(Errc::kTimeout,
                    name + " container is not Running. Please investigate (`crictl ps -a --name " +
                        name + "`), then run with --resume");
      }
      std::this_thread::sleep_for(r.opts.poll_interval);
    }
  }
}

constexpr Step<RestoreRun> kClusterSteps[] = {
    {"cluster.kubelet", 3, &Kubelet},
    {"cluster.verify", 1, &VerifyKubelet},
    {"cluster.start-crio", 1, &StartCrio},
    {"cluster.record-containers", 1, &RecordContainers},
    {"cluster.static-pods", 1, &StaticPods},
    {"cluster.etcd", 3, &EtcdData},
    {"cluster.start-services", 1, &StartServices},
    {"cluster.wait", 5, &WaitForContainers},
};

// ---- phase 3: the post-restore hooks ----

void PostHooks(RestoreRun& r) {
  const fs::path hooks = r.host.Host(r.opts.hooks_dir);
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::directory_iterator it(hooks, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;  // not `ec`: a dangling symlink would end the listing early
    if (it->is_regular_file(type_ec) && ::access(it->path().c_str(), X_OK) == 0) {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  if (found.empty()) spdlog::info("restore: no post-restore hooks in {}", hooks.string());
  for (const auto& h : found) {
    spdlog::info("restore: post-restore hook {}", h.string());
    WithContext("post-restore hook " + h.string(), [&] {
      RunChecked(r.runner, ProcessSpec{.argv = {h.string()},
                                       .env = {{"LCA_RECOVERY_DIR", r.dir.string()}},
                                       .timeout = std::chrono::minutes(30)});
    });
  }
}

// Like TALM's phase 3, a rerun runs all hooks again: this table never skips a done step.
constexpr Step<RestoreRun> kPostSteps[] = {
    {"post.hooks", 1, &PostHooks},
};

StepPolicy RestorePolicy(const RestoreOptions& opts, bool skip_done) {
  StepPolicy policy;
  policy.failpoint_prefix = "recovery.restore.";
  policy.log_label = "restore";
  policy.skip_done = skip_done;
  policy.name_in_errors = skip_done;  // the hooks name themselves
  policy.max_attempts = opts.max_step_attempts;
  policy.give_up_hint =
      "find out why the restore stops there, then run with --resume (or "
      "--restart to begin again)";
  return policy;
}

class Engine {
 public:
  Engine(const RestoreOptions& opts, ProcessRunner& runner)
      : opts_(opts),
        host_(opts.host),
        dir_(host_.Host(opts.dir)),
        cmd_(host_, runner),
        runner_(runner),
        progress_(dir_ / layout::kProgress) {}

  RestoreOutcome Run() {
    manifest_ = LoadBackup(dir_);
    if (opts_.restart) {
      spdlog::info("--restart: clearing the recorded progress");
      progress_.Remove();
      Progress::RemoveFile(dir_ / layout::kJournal);
    }
    if (progress_.Exists() && !opts_.resume && !opts_.step) {
      throw RestoreRefusedError(
          "Restore has already started. Use --restart option to restart, or --step to resume");
    }
    if (!progress_.Exists()) {
      CheckActiveDeployment();
      Progress::RemoveFile(dir_ / layout::kJournal);  // a journal without progress is stale
    }
    if (!progress_.Has(layout::kMarkerCluster)) {
      spdlog::info("checking the backup in {} against its manifest", dir_.string());
      VerifyBackup(dir_, manifest_);
    }
    progress_.Record(layout::kMarkerStarted);
    StepJournal journal(dir_, std::string(layout::kJournal));
    RestoreRun r{opts_, host_, dir_, cmd_, runner_, manifest_, journal, std::nullopt};
    if (!progress_.Has(layout::kMarkerFiles)) {
      Phase(r, kFilesSteps, layout::kMarkerFiles);
      return RestoreOutcome::kRebootRequired;
    }
    if (!progress_.Has(layout::kMarkerCluster)) {
      Phase(r, kClusterSteps, layout::kMarkerCluster);
      if (opts_.step) return RestoreOutcome::kStageComplete;
    }
    StepRunner(journal, RestorePolicy(opts_, false)).Run<RestoreRun>(kPostSteps, r);
    spdlog::info("Recovery complete");
    Progress::RemoveFile(dir_ / layout::kJournal);
    progress_.Remove();
    return RestoreOutcome::kComplete;
  }

 private:
  // A phase's steps with SELinux permissive, then its progress marker.
  void Phase(RestoreRun& r, std::span<const Step<RestoreRun>> steps, std::string_view marker) {
    Permissive selinux(cmd_, r.journal);
    StepRunner(r.journal, RestorePolicy(opts_, true)).Run(steps, r);
    progress_.Record(marker);
    selinux.Leave();
  }

  void CheckActiveDeployment() {
    std::string why;
    try {
      const std::string cmdline = ReadFile(host_.ProcCmdline());
      const auto booted = stateroot::FindBooted(host_.Sysroot(), cmdline);
      if (!booted) {
        why = "the kernel command line has no ostree= argument";
      } else {
        stateroot::OstreeSysroot sr(host_.Sysroot());
        const auto dep = sr.Booted(*booted);
        if (!dep) {
          why = "the booted deployment is not in " + host_.Sysroot().string();
        } else if (dep->pinned) {
          if (!manifest_.checksum.empty() && dep->checksum != manifest_.checksum) {
            spdlog::warn("the booted deployment {} is pinned but the backup was taken on {}",
                         dep->checksum, manifest_.checksum);
          }
          return;
        } else {
          why = "deployment " + dep->stateroot + " " + dep->checksum + "." +
                std::to_string(dep->serial) + " is booted and not pinned";
        }
      }
    } catch (const Error& e) {
      why = std::string("cannot read the ostree deployments: ") + e.what();
    }
    if (opts_.force) {
      spdlog::warn("Active ostree deployment is not pinned ({}); continuing because of --force",
                   why);
      return;
    }
    throw RestoreRefusedError(
        "Active ostree deployment is not pinned and should be rolled back. (" + why +
        "; roll back to the pinned deployment first, see `ostree admin status`, or use --force)");
  }

  const RestoreOptions& opts_;
  const HostConfig& host_;
  fs::path dir_;
  HostCommands cmd_;
  ProcessRunner& runner_;
  Progress progress_;
  BackupManifest manifest_;
};

}  // namespace

std::vector<std::string> RestoreStepNames() {
  std::vector<std::string> out = StepNames<RestoreRun>(kFilesSteps);
  for (auto& n : StepNames<RestoreRun>(kClusterSteps)) out.push_back(std::move(n));
  for (auto& n : StepNames<RestoreRun>(kPostSteps)) out.push_back(std::move(n));
  return out;
}

RestoreOutcome RunRestore(const RestoreOptions& opts, ProcessRunner& runner) {
  Engine engine(opts, runner);
  return engine.Run();
}

}  // namespace lca::recovery
