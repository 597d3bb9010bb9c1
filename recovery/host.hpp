#pragma once
// The host a backup is taken from and restored to. Every host path is a path under `root` (a
// fake host tree in tests, "/" in production), and every host command (systemctl, crictl,
// crio, setenforce, getenforce) runs with `command_prefix` in front of it, so a test can put a
// recording hook there and nothing ever reaches the real machine's systemd or SELinux.
// etcdctl is not a host command: tests run it for real against their own etcd.
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/process.hpp"

namespace lca::recovery {

struct EtcdConfig {
  std::string etcdctl = "etcdctl";  // program (PATH lookup)
  std::vector<std::string> endpoints{"https://localhost:2379"};
  std::string cacert, cert, key;  // TLS files, host paths as given
  // snapshot restore: the member's name and peer URL; empty means etcdctl's defaults.
  std::string name, peer_url;
  std::chrono::seconds timeout{300};
};

struct HostConfig {
  std::filesystem::path root = "/";
  std::filesystem::path sysroot;  // empty: <root>/sysroot
  std::filesystem::path
      proc_cmdline;  // empty: /proc/cmdline when root is "/", else <root>/proc/cmdline
  std::vector<std::string> command_prefix;
  EtcdConfig etcd;

  // A host path ("/etc/kubernetes") under the root.
  std::filesystem::path Host(const std::filesystem::path& host_path) const;
  std::filesystem::path Sysroot() const;
  std::filesystem::path ProcCmdline() const;
};

// Fields of a recovery config file (JSON, see recovery/README.md) applied over `cfg`; unknown
// fields are an error naming them, so a typo is not silently ignored.
void ApplyHostConfigJson(const Json& j, const std::string& what, HostConfig* cfg);

// Runs host commands with the prefix. Failures carry the command and its stderr tail.
class HostCommands {
 public:
  HostCommands(const HostConfig& cfg, ProcessRunner& runner) : cfg_(cfg), runner_(runner) {}

  ProcessResult Run(std::vector<std::string> argv,
                    std::chrono::milliseconds timeout = std::chrono::minutes(5));
  // Throws lca::Error kProcess unless it exits 0.
  ProcessResult Check(std::vector<std::string> argv,
                      std::chrono::milliseconds timeout = std::chrono::minutes(5));
  // Runs it and logs a warning when it fails (steps TALM does not check either, such as
  // stopping a service that is not running).
  void BestEffort(std::vector<std::string> argv);

  ProcessRunner& runner() { return runner_; }

 private:
  ProcessSpec Spec(std::vector<std::string> argv, std::chrono::milliseconds timeout) const;
  const HostConfig& cfg_;
  ProcessRunner& runner_;
};

}  // namespace lca::recovery
