#pragma once
// podman and skopeo for pre-cache tests, isolated from the machine: the test process moves into
// a private mount namespace with a tmpfs over /var/lib (podman and skopeo run as root write
// /var/lib/containers/cache and default to /var/lib/containers/storage; every child inherits the
// namespace), and podman gets its own --root/--runroot/--tmpdir, HOME, XDG_RUNTIME_DIR and
// DOCKER_CONFIG. Tests only.
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "precache/podman.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::test {

// Call once, before any thread starts (unshare(CLONE_NEWNS) refuses multithreaded callers).
inline void EnterPrivateVarLib() {
  static bool done = false;
  if (done) return;
  if (::unshare(CLONE_NEWNS) != 0) throw SystemError("unshare(CLONE_NEWNS)", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw SystemError("making / private", errno);
  }
  if (::mount("lca-test-var-lib", "/var/lib", "tmpfs", 0, "mode=0755") != 0) {
    throw SystemError("tmpfs over /var/lib", errno);
  }
  done = true;
}

// The environment that keeps podman/skopeo away from the machine's user config and credentials.
inline std::map<std::string, std::string> ContainerToolEnv(const std::filesystem::path& home) {
  std::filesystem::create_directories(home / "tmp");
  std::filesystem::create_directories(home / "run");
  std::filesystem::create_directories(home / "docker");
  WriteFileAtomic(home / "docker/config.json", "{}\n", 0600);
  return {{"HOME", home.string()},
          {"XDG_CONFIG_HOME", (home / "config").string()},
          {"XDG_RUNTIME_DIR", (home / "run").string()},
          {"DOCKER_CONFIG", (home / "docker").string()},
          {"TMPDIR", (home / "tmp").string()}};
}

// A podman configuration with every state directory under `dir`. vfs works everywhere (no
// overlay-on-overlay limits in containers); production uses storage.conf's driver.
inline precache::PodmanConfig IsolatedPodman(const std::filesystem::path& dir,
                                             const std::filesystem::path& registries_conf,
                                             const std::filesystem::path& policy,
                                             const std::string& driver = "vfs") {
  precache::PodmanConfig cfg;
  cfg.root = dir / "storage";
  cfg.runroot = dir / "run";
  cfg.tmpdir = dir / "libpod-tmp";
  cfg.storage_driver = driver;
  cfg.registries_conf = registries_conf;
  cfg.signature_policy = policy;
  cfg.env = ContainerToolEnv(dir / "home");
  return cfg;
}

}  // namespace lca::test
