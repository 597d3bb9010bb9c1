#pragma once
// lifecycle-agent's configuration: a YAML file (default /etc/lca/lifecycle-agent.yaml, optional)
// overridden by command-line flags. Every host path is configurable so tests and the demo run
// against throwaway roots and never the machine's own.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lca {

struct DaemonConfig {
  std::filesystem::path sysroot = "/";                   // the ostree sysroot
  std::filesystem::path state_dir = "/var/lib/lca";      // ibu.json, journal, workspace
  std::filesystem::path socket = "/run/lca/lca.sock";    // the local API
  mode_t socket_mode = 0600;                             // root only; see docs
  std::filesystem::path proc_cmdline = "/proc/cmdline";  // booted deployment source
  std::filesystem::path config_dir = "/etc/lca";         // secrets/, configmaps/
  std::filesystem::path config_file;                     // the YAML loaded; empty = none
  std::filesystem::path containers_root = "/var/lib/containers/storage";
  std::string log_level = "info";
  // auto (journald when stderr is its stream, else stderr lines with the journal fields),
  // stderr, journal, or human (time, level, message: for a person reading a file).
  std::string log_format = "auto";
  // containers-registries.conf for seed and image pulls; empty = the system's.
  std::filesystem::path registries_conf;
  // containers-policy.json for seed copies; empty = the system's.
  std::filesystem::path signature_policy;
  // The running release; empty = OPENSHIFT_VERSION in the booted deployment's os-release, then
  // the booted commit's "version" metadata (agent/pivot/node_checks.hpp).
  std::string running_version;
  // Whether the cluster has a proxy (seed compatibility); unset = the booted deployment's
  // /etc/mco/proxy.env decides.
  std::optional<bool> has_proxy;
  // selinuxfs: SELinux is enabled when <selinuxfs>/enforce exists; then a security label that
  // cannot be written fails Prep.
  std::filesystem::path selinuxfs = "/sys/fs/selinux";
  // Used for the seed when spec.seedImageRef.pullSecretRef is absent.
  std::filesystem::path node_pull_secret = "/var/lib/kubelet/config.json";
  // Pre-caching (agent/controller/handlers/precache_phase.hpp): podman's run root and storage
  // driver (empty = podman's defaults), pulls at once, best effort, off, overall time limit.
  std::filesystem::path containers_runroot;
  std::string containers_storage_driver;
  int precache_concurrency = 10;
  bool precache_best_effort = false;
  bool precache_disabled = false;
  int precache_timeout_seconds = 4 * 3600;
  // The running cluster's release registry, for the seed registry override (reference §4.1);
  // empty = no override.
  std::string release_registry;
  // Upgrade hooks: <hooksDir>/pre-pivot.d and post-pivot.d; empty = <configDir>/hooks.
  std::filesystem::path hooks_dir;
  int64_t hook_timeout_seconds = 600;
  // The reboot request; empty = systemd-run ... systemctl reboot. "{rationale}" is replaced.
  std::vector<std::string> reboot_command;
  // systemctl for stopping the init monitor after the upgrade completes.
  std::vector<std::string> systemctl_command = {"systemctl"};
  // Take the recovery backup (lcactl recovery backup) before the pivot; its settings file
  // (empty = /etc/lca/recovery.json when present).
  bool recovery_backup = false;
  std::filesystem::path recovery_config;
  // Prometheus metrics over TCP ("127.0.0.1:9101"; ":9101" is loopback); empty = off. The
  // socket API serves GET /metrics regardless.
  std::string metrics_address;
  // A journaled host step started this many times without finishing (the daemon died during
  // it each time) fails its stage instead of being started again (common/step_runner.hpp).
  int max_step_attempts = 3;
  // Kubernetes mode (docs/kubernetes.md): the CR on the API server this kubeconfig's current
  // context names is mirrored into the node-local object. Empty: in-cluster credentials from
  // service_account_dir when KUBERNETES_SERVICE_HOST is set (a pod), else no cluster.
  std::filesystem::path kubeconfig;
  std::filesystem::path service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

inline constexpr const char* kDefaultConfigFile = "/etc/lca/lifecycle-agent.yaml";

// Reads a config file over `base`. Unknown keys and bad values are lca::Error kInvalid naming
// the file and key.
DaemonConfig LoadConfigFile(const std::filesystem::path& file, DaemonConfig base);

// "0600" / "600" / "0o600" -> 0600; throws kInvalid.
mode_t ParseMode(const std::string& text, const std::string& what);

}  // namespace lca
