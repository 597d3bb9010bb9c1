#pragma once
// A real OCI registry (Debian's docker-registry) on 127.0.0.1 for one test, started and stopped
// through scripts/testbed/registry.sh in a temp directory of its own. Tests only.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::test {

inline std::filesystem::path TestbedScript(const std::string& name) {
  return std::filesystem::path(LCA_TEST_SOURCE_DIR) / "scripts" / "testbed" / name;
}

// The testbed scripts print their result as the last line of stdout.
inline std::string LastLine(const std::string& out) {
  std::string s = out;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

struct RegistryCredentials {
  std::string user;
  std::string password;
};

class LocalRegistry {
 public:
  // With credentials the registry requires them (htpasswd, bcrypt) and auth_json() holds them.
  explicit LocalRegistry(std::optional<RegistryCredentials> auth = std::nullopt)
      : auth_(std::move(auth)) {
    std::vector<std::string> argv = {TestbedScript("registry.sh").string(), "start",
                                     dir_.path().string()};
    if (auth_) {
      argv.push_back("--htpasswd");
      argv.push_back(auth_->user + ":" + auth_->password);
    }
    SystemProcessRunner runner;
    const ProcessResult r =
        RunChecked(runner, ProcessSpec{.argv = argv, .timeout = std::chrono::milliseconds(30000)});
    running_ = true;
    address_ = LastLine(r.stdout_data);
    if (address_.rfind("127.0.0.1:", 0) != 0) {
      Stop();
      throw Error(Errc::kInternal, "registry.sh start printed no address: " + r.stdout_data);
    }
    std::ifstream pid_file(dir_ / "registry.pid");
    pid_file >> pid_;
  }

  ~LocalRegistry() {
    try {
      Stop();
    } catch (...) {  // a destructor must not throw; the temp dir goes away regardless
    }
  }
  LocalRegistry(const LocalRegistry&) = delete;
  LocalRegistry& operator=(const LocalRegistry&) = delete;

  // Stops the registry (idempotent). Throws if registry.sh stop fails.
  void Stop() {
    if (!running_) return;
    running_ = false;
    SystemProcessRunner runner;
    RunChecked(runner, ProcessSpec{.argv = {TestbedScript("registry.sh").string(), "stop",
                                            dir_.path().string()},
                                   .timeout = std::chrono::milliseconds(30000)});
  }

  // "127.0.0.1:PORT"
  const std::string& address() const { return address_; }
  // The registry's process id (docker-registry itself, in its own session).
  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  // containers-registries.conf v2 marking the registry insecure (it speaks plain HTTP).
  std::filesystem::path registries_conf() const { return dir_ / "registries.conf"; }
  // dockerconfigjson with the credentials; only exists when auth is on.
  std::filesystem::path auth_json() const { return dir_ / "auth.json"; }
  // {"default":[{"type":"insecureAcceptAnything"}]} for skopeo/podman --policy.
  std::filesystem::path policy_json() const { return dir_ / "policy.json"; }
  const std::optional<RegistryCredentials>& credentials() const { return auth_; }

  // A skopeo command that leaves the machine alone: skopeo 1.9 run as root writes its blob-info
  // cache to /var/lib/containers/cache (there is no flag to move it), so it runs in a private
  // mount namespace with a tmpfs over /var/lib; HOME, XDG_* and DOCKER_CONFIG point into our dir
  // so no credentials but an explicit --authfile are found (containers/image also reads
  // ~/.docker/config.json and ~/.config/containers/auth.json); the signature policy and
  // registries.conf are ours. skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF (podman honours
  // it), so the subcommand also gets its hidden --registries-conf flag.
  // `args` start with the subcommand: {"inspect", "docker://..."}.
  ProcessSpec SkopeoSpec(const std::vector<std::string>& args) const {
    const std::filesystem::path home = dir_ / "skopeo-home";
    std::filesystem::create_directories(home / "tmp");
    std::vector<std::string> argv = {
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs lca-test-skopeo /var/lib && exec skopeo \"$@\"",
        "skopeo",
        "--policy",
        policy_json().string(),
        "--tmpdir",
        (home / "tmp").string()};
    if (!args.empty()) {
      argv.push_back(args[0]);
      argv.push_back("--registries-conf");
      argv.push_back(registries_conf().string());
      argv.insert(argv.end(), args.begin() + 1, args.end());
    }
    return ProcessSpec{.argv = argv,
                       .env = {{"HOME", home.string()},
                               {"XDG_CONFIG_HOME", (home / "config").string()},
                               {"XDG_RUNTIME_DIR", (home / "run").string()},
                               {"DOCKER_CONFIG", (home / "docker").string()},
                               {"CONTAINERS_REGISTRIES_CONF", registries_conf().string()},
                               {"REGISTRY_AUTH_FILE", (home / "no-auth.json").string()}},
                       .timeout = std::chrono::milliseconds(120000)};
  }

 private:
  TempDir dir_{"lca-registry"};
  std::optional<RegistryCredentials> auth_;
  std::string address_;
  pid_t pid_ = -1;
  bool running_ = false;
};

}  // namespace lca::test
