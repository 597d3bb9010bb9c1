#include "recovery/restore.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/failpoint.hpp"
#include "common/json_yaml.hpp"
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

// <dir>/restore-journal.json: the step running, the steps done, what must be put back.
class Journal {
 public:
  explicit Journal(fs::path file) : file_(std::move(file)) {
    if (auto text = ReadFileIfExists(file_)) j_ = ParseJson(*text, file_.string());
    if (!j_.is_object()) j_ = Json::object();
    if (!j_.contains("done")) j_["done"] = Json::array();
  }
  bool Done(const std::string& step) const {
    for (const auto& s : j_["done"]) {
      if (s == step) return true;
    }
    return false;
  }
  void Running(const std::string& step) {
    j_["running"] = step;
    Save();
  }
  void Finished(const std::string& step) {
    j_["done"].push_back(step);
    j_.erase("running");
    Save();
  }
  Json& data() { return j_; }
  void Save() { WriteFileAtomic(file_, ToPrettyJson(j_), 0600); }

 private:
  fs::path file_;
  Json j_;
};

// SELinux permissive for the duration of a phase, and back to the mode it had before the
// restore began on every way out: return, exception, and (through the journal, which keeps
// the original mode) the next run after a kill.
class Permissive {
 public:
  Permissive(HostCommands& cmd, Journal& journal) : cmd_(cmd), journal_(journal) {
    if (!journal_.data().contains("selinux")) {
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
      journal_.data()["selinux"] = mode;
      journal_.Save();
    }
    enforcing_ = journal_.data()["selinux"] == "Enforcing";
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
  Journal& journal_;
  bool enforcing_ = false;
};

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
    Journal journal(dir_ / layout::kJournal);
    if (!progress_.Has(layout::kMarkerFiles)) {
      RestoreFiles(journal);
      return RestoreOutcome::kRebootRequired;
    }
    if (!progress_.Has(layout::kMarkerCluster)) {
      RestoreCluster(journal);
      if (opts_.step) return RestoreOutcome::kStageComplete;
    }
    PostRestore(journal);
    spdlog::info("Recovery complete");
    Progress::RemoveFile(dir_ / layout::kJournal);
    progress_.Remove();
    return RestoreOutcome::kComplete;
  }

 private:
  template <class F>
  void Step(Journal& journal, const std::string& name, F&& f) {
    if (journal.Done(name)) {
      spdlog::info("restore: {} already done", name);
      return;
    }
    journal.Running(name);
    spdlog::info("restore: {}", name);
    const auto start = std::chrono::steady_clock::now();
    WithContext(name, [&] {
      LCA_FAILPOINT("recovery.restore." + name);
      f();
    });
    journal.Finished(name);
    spdlog::info("restore: {} done in {} ms", name,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count());
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

  void RestoreFiles(Journal& journal) {
    Permissive selinux(cmd_, journal);
    Step(journal, "files.stop-services", [&] {
      cmd_.BestEffort({"systemctl", "stop", "kubelet.service"});
      cmd_.BestEffort({"crictl", "rmp", "-fa"});
      cmd_.BestEffort({"systemctl", "stop", "crio.service"});
    });
    Step(journal, "files.wipe-crio", [&] { cmd_.BestEffort({"crio", "wipe", "-f"}); });
    Step(journal, "files.usr-local",
         [&] { SyncTree(dir_ / layout::kLocal, host_.Host("/usr/local")); });
    const PathFilter exclude = PathFilter::FromList(ReadFile(dir_ / layout::kExcludeList));
    Step(journal, "files.etc", [&] {
      SyncTree(dir_ / layout::kEtc, host_.Host("/etc"), SyncOptions{.exclude = &exclude});
    });
    Step(journal, "files.extras", [&] {
      const fs::path extras = dir_ / layout::kExtras;
      std::error_code ec;
      if (!fs::exists(extras, ec)) return;
      stateroot::FileSource src(extras);
      stateroot::ExtractTar(src, extras.string(), host_.root);
    });
    Step(journal, "files.verify", [&] {
      stateroot::SyncFilesystem(host_.Host("/etc"));
      Verify(std::string(layout::kLocal), host_.Host("/usr/local"), nullptr);
      Verify(std::string(layout::kEtc), host_.Host("/etc"), &exclude);
    });
    Step(journal, "files.disable-kubelet", [&] {
      cmd_.Check({"systemctl", "daemon-reload"});
      cmd_.Check({"systemctl", "disable", "kubelet.service"});
    });
    progress_.Record(layout::kMarkerFiles);
    selinux.Leave();
  }

  void RestoreCluster(Journal& journal) {
    Permissive selinux(cmd_, journal);
    Step(journal, "cluster.kubelet",
         [&] { SyncTree(dir_ / layout::kKubelet, host_.Host("/var/lib/kubelet")); });
    Step(journal, "cluster.verify", [&] {
      stateroot::SyncFilesystem(host_.Host("/var/lib/kubelet"));
      Verify(std::string(layout::kKubelet), host_.Host("/var/lib/kubelet"), nullptr);
    });
    Step(journal, "cluster.start-crio", [&] {
      if (!cmd_.Run({"systemctl", "-q", "is-active", "crio.service"}).ok()) {
        cmd_.Check({"systemctl", "start", "crio.service"});
      }
    });
    Step(journal, "cluster.record-containers", [&] {
      Json ids = Json::object();
      const Json running = Containers();
      for (const auto& name : opts_.wait_containers) ids[name] = IdOf(running, name);
      journal.data()["containers"] = ids;
      journal.Save();
    });
    Step(journal, "cluster.static-pods", [&] {
      const fs::path kube = host_.Host("/etc/kubernetes");
      EnsureDir(kube, 0755);
      stateroot::FileSource src(dir_ / manifest_.static_pods);
      stateroot::ExtractTar(src, manifest_.static_pods, kube);
      // The pods' manifests as they were: kubelet starts them from here.
      EnsureDir(kube / "manifests", 0755);
      for (const auto& d : manifest_.static_pod_dirs) {
        const std::string pod = d.substr(0, d.rfind('-'));  // etcd-pod-7 -> etcd-pod
        const fs::path yaml = kube / "static-pod-resources" / d / (pod + ".yaml");
        const auto text = ReadFileIfExists(yaml);
        if (!text) {
          spdlog::warn("{} has no {}.yaml: its static pod manifest is left as it is", d, pod);
          continue;
        }
        WriteFileAtomic(kube / "manifests" / (pod + ".yaml"), *text, 0644);
      }
    });
    Step(journal, "cluster.etcd", [&] {
      EtcdRestoreDataDir(host_.etcd, runner_, dir_ / manifest_.etcd_snapshot,
                         host_.Host("/var/lib/etcd"), host_.Host("/var/lib/etcd-backup"));
    });
    Step(journal, "cluster.start-services", [&] {
      cmd_.Check({"systemctl", "restart", "kubelet.service"});
      cmd_.Check({"systemctl", "enable", "kubelet.service"});
      cmd_.Check({"systemctl", "restart", "crio.service"});
    });
    Step(journal, "cluster.wait", [&] { WaitForContainers(journal); });
    progress_.Record(layout::kMarkerCluster);
    selinux.Leave();
  }

  void PostRestore(Journal& journal) {
    // No "done" record for the hooks: like TALM's phase 3, a rerun runs them all again.
    journal.Running("post.hooks");
    LCA_FAILPOINT("recovery.restore.post.hooks");
    const fs::path hooks = host_.Host(opts_.hooks_dir);
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
        RunChecked(runner_, ProcessSpec{.argv = {h.string()},
                                        .env = {{"LCA_RECOVERY_DIR", dir_.string()}},
                                        .timeout = std::chrono::minutes(30)});
      });
    }
  }

  void Verify(const std::string& name, const fs::path& tree, const PathFilter* exclude) {
    const auto diffs = CompareTrees(manifest_.trees.at(name), ScanTree(tree, exclude), exclude);
    if (diffs.empty()) {
      spdlog::info("restore: {} matches the backup", tree.string());
      return;
    }
    std::string text;
    for (const auto& d : diffs) text += "\n  " + d;
    throw Error(Errc::kIo, tree.string() + " differs from the backup after the restore:" + text);
  }

  Json Containers() {
    const ProcessResult r = cmd_.Check({"crictl", "ps", "-a", "-o", "json"});
    const Json j = ParseJson(r.stdout_data, "crictl ps -o json");
    if (!j.contains("containers") || !j["containers"].is_array()) return Json::array();
    return j["containers"];
  }

  static std::string IdOf(const Json& containers, const std::string& name, bool running = false) {
    for (const auto& c : containers) {
      if (!c.is_object() || !c.contains("metadata")) continue;
      if (c["metadata"].value("name", std::string()) != name) continue;
      if (running && c.value("state", std::string()) != "CONTAINER_RUNNING") continue;
      return c.value("id", std::string());
    }
    return {};
  }

  void WaitForContainers(Journal& journal) {
    const Json before = journal.data().value("containers", Json::object());
    const auto deadline = std::chrono::steady_clock::now() + opts_.wait_timeout;
    for (const auto& name : opts_.wait_containers) {
      const std::string old_id = before.value(name, std::string());
      spdlog::info("waiting for {} to run (a container other than \"{}\")", name, old_id);
      for (;;) {
        const std::string id = IdOf(Containers(), name, true);
        if (!id.empty() && id != old_id) break;
        if (std::chrono::steady_clock::now() >= deadline) {
          throw Error(Errc::kTimeout,
                      name +
                          " container is not Running. Please investigate (`crictl ps -a --name " +
                          name + "`), then run with --resume");
        }
        std::this_thread::sleep_for(opts_.poll_interval);
      }
    }
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

RestoreOutcome RunRestore(const RestoreOptions& opts, ProcessRunner& runner) {
  Engine engine(opts, runner);
  return engine.Run();
}

}  // namespace lca::recovery
