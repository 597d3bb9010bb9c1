#pragma once
// An upgradable throwaway host for end-to-end tests: a seed 4.15.2 in a real registry on
// loopback (SeedBed, built once per test binary) and a 4.14.1 ostree host running the real
// lifecycle-agent, driven with the real lcactl (AgentHost). Reboots are simulated as TESTBED.md
// describes: the agent's reboot command records the request; Reboot() stops the daemon, takes
// the default boot entry's options line as the new kernel command line and starts the daemon
// again on the stateroot that line boots, with that stateroot's var/lib/lca as its state dir
// (what /var/lib/lca is on a real host).
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/shared_bed.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca::test {

inline const std::string kDaemonBin =
    std::string(LCA_TEST_BINARY_DIR) + "/agent/daemon/lifecycle-agent";
inline const std::string kCtlBin = std::string(LCA_TEST_BINARY_DIR) + "/agent/cli/lcactl";

// argv in a private mount namespace with a tmpfs over /var/lib: skopeo run as root writes a
// blob-info cache into /var/lib/containers and no flag moves it.
inline std::vector<std::string> Isolated(const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"/usr/bin/unshare",
                                  "--mount",
                                  "--propagation",
                                  "private",
                                  "--",
                                  "/bin/sh",
                                  "-c",
                                  "mount -t tmpfs lca-test /var/lib && exec \"$0\" \"$@\""};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// Nothing of the machine's user config (credentials, registries) is found.
inline std::map<std::string, std::string> IsolatedEnv(const std::filesystem::path& home) {
  std::filesystem::create_directories(home / "tmp");
  return {{"HOME", home.string()},
          {"XDG_CONFIG_HOME", (home / "config").string()},
          {"XDG_RUNTIME_DIR", (home / "run").string()},
          {"DOCKER_CONFIG", (home / "docker").string()},
          {"REGISTRY_AUTH_FILE", (home / "no-auth.json").string()},
          {"TMPDIR", (home / "tmp").string()},
          {"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}};
}

inline ProcessResult MustRunArgv(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env = {}) {
  SystemProcessRunner runner;
  return RunChecked(runner, ProcessSpec{.argv = argv,
                                        .env = env,
                                        .timeout = std::chrono::seconds(180),
                                        .stderr_tail_bytes = 1 << 16});
}

struct SeedBed {
  static constexpr const char* kVersion = "4.15.2";
  TempDir root{"lca-seed-bed"};
  std::unique_ptr<LocalRegistry> registry;
  std::unique_ptr<TestSysroot> seed_host;
  std::string image;

  SeedBed() {
    registry = std::make_unique<LocalRegistry>();
    image = registry->address() + "/ibu/seed:" + kVersion;
    seed_host = std::make_unique<TestSysroot>(root / "seedhost", kVersion);
    const auto dep =
        seed_host->sysroot() / "ostree/deploy/rhcos/deploy" / (seed_host->commit() + ".0");
    WriteFileAtomic(dep / "etc/seed-added.conf", "added on the seed host\n", 0644);
    std::filesystem::create_directories(seed_host->stateroot_var() / "lib/seeddata");
    WriteFileAtomic(seed_host->stateroot_var() / "lib/seeddata/x", "seed data\n", 0644);
    WriteFileAtomic(root / "containers.list",
                    "quay.io/openshift/etcd@sha256:" + std::string(64, 'b') + "\n", 0644);
    WriteFileAtomic(root / "no-auth.json", "{\"auths\":{}}\n", 0600);
    std::filesystem::create_directories(root / "work");
    MustRunArgv(
        Isolated({kCtlBin, "seed", "create", "--sysroot", seed_host->sysroot().string(),
                  "--version", kVersion, "--containers-list", (root / "containers.list").string(),
                  "--work-dir", (root / "work").string(), "--image", image, "--authfile",
                  (root / "no-auth.json").string(), "--registries-conf",
                  registry->registries_conf().string(), "--policy",
                  registry->policy_json().string()}),
        IsolatedEnv(root / "home"));
  }
};

struct CtlResult {
  int code;
  std::string out, err;
};

class AgentHost {
 public:
  static constexpr const char* kTarget = "rhcos_4.15.2";

  AgentHost(const std::filesystem::path& dir, const SeedBed& bed) : AgentHost(dir, *bed.registry) {}
  // A host at `host_version` (the booted commit's version metadata) whose seeds are in
  // `registry`.
  AgentHost(const std::filesystem::path& dir, const LocalRegistry& registry,
            const std::string& host_version = "4.14.1")
      : dir_(dir), registry_(registry), host_(dir / "host", host_version) {
    for (const char* d : {"etc/hooks/pre-pivot.d", "etc/hooks/post-pivot.d", "bin", "run"}) {
      std::filesystem::create_directories(dir_ / d);
    }
    WriteFileAtomic(dir_ / "none.yaml", "", 0644);
    WriteFileAtomic(dir_ / "pull-secret.json", "{\"auths\":{}}\n", 0600);
    // The reboot request and systemctl calls are recorded, one line each.
    WriteFileAtomic(dir_ / "bin/reboot",
                    "#!/bin/sh\necho \"$*\" >> '" + (dir_ / "reboots.log").string() + "'\n", 0755);
    WriteFileAtomic(dir_ / "bin/systemctl",
                    "#!/bin/sh\necho \"$*\" >> '" + (dir_ / "systemctl.log").string() + "'\n",
                    0755);
    cmdline_ = dir_ / "cmdline-0";
    std::filesystem::copy_file(host_.cmdline_file(), cmdline_);
  }
  ~AgentHost() {
    if (daemon_) Stop();
  }

  std::filesystem::path sysroot() const { return host_.sysroot(); }
  const TestSysroot& host() const { return host_; }
  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& cmdline_file() const { return cmdline_; }
  std::filesystem::path hooks(const std::string& phase) const {
    return dir_ / "etc/hooks" / (phase + ".d");
  }
  std::string BootedStateroot() const {
    return stateroot::FindBooted(sysroot(), ReadFile(cmdline_))->stateroot;
  }
  std::filesystem::path StateDir(const std::string& stateroot) const {
    return sysroot() / "ostree/deploy" / stateroot / "var/lib/lca";
  }
  std::filesystem::path StateDir() const { return StateDir(BootedStateroot()); }
  int Reboots() const {
    const auto log = ReadFileIfExists(dir_ / "reboots.log").value_or("");
    return static_cast<int>(std::count(log.begin(), log.end(), '\n'));
  }
  std::string DaemonLog() const { return ReadFileIfExists(dir_ / "daemon.log").value_or(""); }

  // Runs Prep's Precache phase (off by default: the SeedBed registry lacks the seed's images).
  void EnablePrecache() { precache_ = true; }
  // Added to the command line of every daemon start until changed.
  void SetDaemonFlags(std::vector<std::string> flags) { daemon_flags_ = std::move(flags); }
  // The booted deployment's root (what the running host sees as /).
  std::filesystem::path BootedDeploymentDir() const {
    return stateroot::FindBooted(sysroot(), ReadFile(cmdline_))->deployment_dir;
  }

  // Added to the environment of every daemon start (e.g. LCA_FAILPOINTS) until cleared.
  void SetDaemonEnv(std::map<std::string, std::string> env) { daemon_env_ = std::move(env); }
  // The daemon's --registries-conf from now on, instead of the bed registry's.
  void SetRegistriesConf(std::filesystem::path file) { registries_conf_ = std::move(file); }
  pid_t DaemonPid() const { return daemon_ ? daemon_->pid() : -1; }

  void Start(const std::map<std::string, std::string>& extra_env = {}) {
    std::vector<std::string> argv = {
        kDaemonBin, "--state-dir", StateDir().string(), "--socket",
        (dir_ / "run/lca.sock").string(), "--sysroot", sysroot().string(), "--proc-cmdline",
        cmdline_.string(), "--config-dir", (dir_ / "etc").string(), "--registries-conf",
        (registries_conf_.empty() ? registry_.registries_conf() : registries_conf_).string(),
        "--signature-policy", registry_.policy_json().string(), "--node-pull-secret",
        (dir_ / "pull-secret.json").string(), "--config", (dir_ / "none.yaml").string(),
        "--systemctl-command", (dir_ / "bin/systemctl").string(), "--reboot-command",
        (dir_ / "bin/reboot").string(), "--log-level", "debug",
        // The seed's image list is not in the bed's registry; the
        // Precache phase has its own end-to-end test.
        "--precache-disabled"};
    if (precache_) argv.pop_back();
    argv.insert(argv.end(), daemon_flags_.begin(), daemon_flags_.end());
    daemon_ = std::make_unique<ChildProcess>();
    auto env = IsolatedEnv(dir_ / "home");
    env.insert(extra_env.begin(), extra_env.end());
    env.insert(daemon_env_.begin(), daemon_env_.end());
    daemon_->Start(Isolated(argv), env, (dir_ / "daemon.log").string());
    for (int i = 0; i < 500; ++i) {
      if (Ctl({"get", "ibu", "-o", "name"}).code == 0) return;
      if (auto code = Exited()) {
        // Died while starting (a crash failpoint at the first step): Exited() reports it.
        pending_exit_ = code;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw Error(Errc::kInternal, "daemon did not come up; log:\n" + DaemonLog());
  }

  // The daemon's exit status once it has exited by itself (a crash failpoint: 137).
  std::optional<int> Exited() {
    if (pending_exit_) return std::exchange(pending_exit_, std::nullopt);
    if (!daemon_) return std::nullopt;
    auto st = daemon_->Wait(std::chrono::milliseconds(0));
    if (!st) return std::nullopt;
    daemon_.reset();
    return WIFEXITED(*st) ? WEXITSTATUS(*st) : 128 + WTERMSIG(*st);
  }
  bool Running() const { return daemon_ != nullptr; }

  void Stop() {
    if (!daemon_) return;
    daemon_->Signal(SIGTERM);
    if (!daemon_->Wait(std::chrono::seconds(30))) {
      daemon_->Signal(SIGKILL);
      daemon_->Wait(std::chrono::seconds(10));
    }
    daemon_.reset();
  }

  // SIGKILL: the daemon gets no chance to finish anything.
  void Kill() {
    if (!daemon_) return;
    daemon_->Signal(SIGKILL);
    daemon_->Wait(std::chrono::seconds(10));
    daemon_.reset();
  }

  // Stops the daemon and boots the default entry.
  void Reboot() {
    Stop();
    std::map<std::string, std::string> entries;
    int best = -1;
    std::string options;
    for (const auto& e : std::filesystem::directory_iterator(sysroot() / "boot/loader/entries")) {
      std::smatch m;
      const std::string name = e.path().filename().string();
      if (!std::regex_match(name, m, std::regex(R"(ostree-(\d+)-.*\.conf)"))) continue;
      if (std::stoi(m[1]) <= best) continue;
      best = std::stoi(m[1]);
      const std::string text = ReadFile(e.path());
      const auto pos = text.find("\noptions ");
      options = text.substr(pos + 9, text.find('\n', pos + 9) - pos - 9);
    }
    cmdline_ = dir_ / ("cmdline-" + std::to_string(++boots_));
    WriteFileAtomic(cmdline_, options + "\n", 0644);
    Start();
  }

  CtlResult Ctl(const std::vector<std::string>& args) {
    ProcessSpec spec;
    spec.argv = {kCtlBin, "--socket", (dir_ / "run/lca.sock").string()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(60);
    spec.stderr_tail_bytes = 1 << 16;
    SystemProcessRunner runner;
    const auto r = runner.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }

  // A command line as the product docs write it (their quoting, through /bin/sh), `lcactl`
  // being the real binary on this host's socket.
  CtlResult Shell(const std::string& line) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c",
                 "lcactl() { \"$LCACTL\" --socket \"$LCA_SOCKET\" \"$@\"; }\n" + line};
    spec.env = {{"LCACTL", kCtlBin}, {"LCA_SOCKET", (dir_ / "run/lca.sock").string()}};
    spec.timeout = std::chrono::minutes(10);
    spec.stderr_tail_bytes = 1 << 16;
    SystemProcessRunner runner;
    const auto r = runner.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }

  Json Object() {
    const auto r = Ctl({"get", "ibu", "upgrade", "-o", "json"});
    if (r.code != 0) throw Error(Errc::kInternal, "lcactl get: " + r.err);
    return ParseJson(r.out, "object");
  }

  void Patch(const Json& patch) {
    const auto r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", patch.dump()});
    if (r.code != 0) throw Error(Errc::kInternal, "lcactl patch " + patch.dump() + ": " + r.err);
  }

  static std::string ConditionStatus(const Json& o, const std::string& type) {
    for (const auto& c : o["status"].value("conditions", Json::array())) {
      if (c.value("type", "") == type) return c.value("status", "");
    }
    return "";
  }
  static std::string ConditionMessage(const Json& o, const std::string& type) {
    for (const auto& c : o["status"].value("conditions", Json::array())) {
      if (c.value("type", "") == type) return c.value("message", "");
    }
    return "";
  }

  // Polls until `pred(object)`; `on_idle` runs each round (to restart a crashed daemon or boot
  // after a reboot request). Throws with the object and the log on timeout.
  Json WaitFor(const std::function<bool(const Json&)>& pred, const std::string& what,
               std::chrono::seconds timeout = std::chrono::seconds(120),
               const std::function<void()>& on_idle = {}) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Json o;
    while (std::chrono::steady_clock::now() < deadline) {
      if (on_idle) on_idle();
      if (Running()) {
        // The daemon may die (a crash failpoint) between the check and the request: the next
        // round's on_idle restarts it.
        try {
          o = Object();
        } catch (const Error&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        if (o["status"].value("observedGeneration", 0) == o["metadata"].value("generation", 0) &&
            pred(o)) {
          return o;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw Error(Errc::kTimeout, "timed out waiting for " + what + "\nobject: " + o.dump(2) +
                                    "\ndaemon log:\n" + DaemonLog());
  }

 private:
  std::filesystem::path dir_;
  const LocalRegistry& registry_;
  std::vector<std::string> daemon_flags_;
  bool precache_ = false;
  TestSysroot host_;
  std::filesystem::path cmdline_;
  int boots_ = 0;
  std::unique_ptr<ChildProcess> daemon_;
  std::map<std::string, std::string> daemon_env_;
  std::filesystem::path registries_conf_;
  std::optional<int> pending_exit_;
};

// Suites on the seed bed share one (tests/support/shared_bed.hpp).
using SeedBedSuite = SharedBedSuite<SeedBed>;

}  // namespace lca::test
