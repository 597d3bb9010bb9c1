// lifecycle-agent: the node-side image-based upgrade daemon.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/daemon/daemon.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "lifecycle-agent: image-based upgrades of an ostree host, driven by the "
      "ImageBasedUpgrade object on a local socket (see lcactl)"};
  app.set_version_flag("--version", LCA_VERSION);
  std::string config_file = lca::kDefaultConfigFile;
  bool config_given = false;
  std::string sysroot, state_dir, socket, socket_mode, proc_cmdline, containers_root, config_dir,
      log_level, log_format, registries_conf, signature_policy, running_version, node_pull_secret;
  app.add_option_function<std::string>(
      "--config", [&](const std::string& v) { config_file = v, config_given = true; },
      std::string("configuration file (YAML; default ") + lca::kDefaultConfigFile +
          ", used when present)");
  app.add_option("--sysroot", sysroot, "ostree sysroot to manage (default /)");
  app.add_option("--state-dir", state_dir,
                 "where the object, journal and workspace live (default /var/lib/lca)");
  app.add_option("--socket", socket, "API socket (default /run/lca/lca.sock)");
  app.add_option("--socket-mode", socket_mode, "API socket mode (default 0600; root only)");
  app.add_option("--proc-cmdline", proc_cmdline,
                 "kernel command line to find the booted deployment in (default /proc/cmdline)");
  app.add_option("--config-dir", config_dir, "secrets and config maps (default /etc/lca)");
  app.add_option("--containers-root", containers_root,
                 "containers-storage root for pre-caching (default /var/lib/containers/storage)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error (default info)");
  app.add_option("--log-format", log_format,
                 "auto (journald when stderr is its stream, else stderr), stderr (lines with the "
                 "journal fields), journal, human (time, level, message)");
  app.add_option("--registries-conf", registries_conf,
                 "containers-registries.conf for seed and image pulls (default: the system's)");
  app.add_option("--signature-policy", signature_policy,
                 "containers-policy.json for seed copies (default: the system's)");
  app.add_option("--running-version", running_version,
                 "the running OpenShift release (default: OPENSHIFT_VERSION in the booted "
                 "deployment's os-release, then the booted commit's version metadata)");
  std::string selinuxfs;
  app.add_option("--selinuxfs", selinuxfs,
                 "selinuxfs mount: SELinux is enabled when DIR/enforce exists (default "
                 "/sys/fs/selinux)");
  app.add_option(
      "--node-pull-secret", node_pull_secret,
      "pull secret used when the spec names none (default /var/lib/kubelet/config.json)");
  std::string hooks_dir;
  std::vector<std::string> reboot_command, systemctl_command;
  app.add_option("--hooks-dir", hooks_dir,
                 "upgrade hooks: pre-pivot.d/ and post-pivot.d/ (default <config-dir>/hooks)");
  app.add_option("--reboot-command", reboot_command,
                 "argv that requests a reboot ({rationale} is replaced; default systemd-run ... "
                 "systemctl reboot)");
  app.add_option("--systemctl-command", systemctl_command,
                 "argv prefix for systemctl (stops the init monitor; default systemctl)");
  std::string containers_runroot, storage_driver;
  int precache_concurrency = 0, precache_timeout = 0;
  bool precache_best_effort = false, precache_disabled = false;
  app.add_option("--containers-runroot", containers_runroot, "podman --runroot for pre-caching");
  app.add_option("--containers-storage-driver", storage_driver, "podman --storage-driver");
  app.add_option("--precache-concurrency", precache_concurrency, "pulls at once (default 10)");
  app.add_option("--precache-timeout", precache_timeout, "pre-cache time limit, s (default 4 h)");
  app.add_flag("--precache-best-effort", precache_best_effort,
               "Prep completes despite failed pulls");
  app.add_flag("--precache-disabled", precache_disabled, "no pre-cache phase in Prep");
  int max_step_attempts = 0;
  app.add_option("--max-step-attempts", max_step_attempts,
                 "starts of a host step that never finishes before its stage fails (default 3)")
      ->check(CLI::Range(1, 1000));
  std::string metrics_address;
  app.add_option("--metrics-address", metrics_address,
                 "serve Prometheus metrics on HOST:PORT (e.g. 127.0.0.1:9101; default off)");
  std::string kubeconfig, service_account_dir;
  app.add_option("--kubeconfig", kubeconfig,
                 "Kubernetes mode: mirror the ImageBasedUpgrade CR on the API server this "
                 "kubeconfig's current context names (default: in-cluster credentials in a pod, "
                 "else off)");
  app.add_option("--service-account-dir", service_account_dir,
                 "in-cluster credentials (token, ca.crt) (default "
                 "/var/run/secrets/kubernetes.io/serviceaccount)");
  CLI11_PARSE(app, argc, argv);

  try {
    lca::DaemonConfig cfg;
    if (config_given || std::filesystem::exists(config_file)) {
      cfg = lca::LoadConfigFile(config_file, cfg);
      cfg.config_file = config_file;  // GET /lca/v1/paths tells must-gather
    }
    if (!sysroot.empty()) cfg.sysroot = sysroot;
    if (!state_dir.empty()) cfg.state_dir = state_dir;
    if (!socket.empty()) cfg.socket = socket;
    if (!socket_mode.empty()) cfg.socket_mode = lca::ParseMode(socket_mode, "--socket-mode");
    if (!proc_cmdline.empty()) cfg.proc_cmdline = proc_cmdline;
    if (!config_dir.empty()) cfg.config_dir = config_dir;
    if (!containers_root.empty()) cfg.containers_root = containers_root;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (!log_format.empty()) cfg.log_format = log_format;
    if (!registries_conf.empty()) cfg.registries_conf = registries_conf;
    if (!running_version.empty()) cfg.running_version = running_version;
    if (!signature_policy.empty()) cfg.signature_policy = signature_policy;
    if (!selinuxfs.empty()) cfg.selinuxfs = selinuxfs;
    if (!node_pull_secret.empty()) cfg.node_pull_secret = node_pull_secret;
    if (!hooks_dir.empty()) cfg.hooks_dir = hooks_dir;
    if (!reboot_command.empty()) cfg.reboot_command = reboot_command;
    if (!systemctl_command.empty()) cfg.systemctl_command = systemctl_command;
    if (!containers_runroot.empty()) cfg.containers_runroot = containers_runroot;
    if (!storage_driver.empty()) cfg.containers_storage_driver = storage_driver;
    if (precache_concurrency > 0) cfg.precache_concurrency = precache_concurrency;
    if (precache_timeout > 0) cfg.precache_timeout_seconds = precache_timeout;
    cfg.precache_best_effort = cfg.precache_best_effort || precache_best_effort;
    cfg.precache_disabled = cfg.precache_disabled || precache_disabled;
    if (!metrics_address.empty()) cfg.metrics_address = metrics_address;
    if (!kubeconfig.empty()) cfg.kubeconfig = kubeconfig;
    if (!service_account_dir.empty()) cfg.service_account_dir = service_account_dir;
    if (max_step_attempts > 0) cfg.max_step_attempts = max_step_attempts;
    lca::SetupLogging("lifecycle-agent", cfg.log_level, lca::ParseLogTarget(cfg.log_format));
    return lca::RunDaemon(cfg);
  } catch (const std::exception& e) {
    // Logging may not be set up yet: stderr reaches the journal either way.
    std::cerr << "lifecycle-agent: " << e.what() << "\n";
    return 1;
  }
}
