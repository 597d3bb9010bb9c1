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
      log_level, registries_conf, signature_policy, running_version, node_pull_secret;
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
  app.add_option("--registries-conf", registries_conf,
                 "containers-registries.conf for seed and image pulls (default: the system's)");
  app.add_option("--signature-policy", signature_policy,
                 "containers-policy.json for seed copies (default: the system's)");
  app.add_option("--running-version", running_version,
                 "the running release (default: the booted commit's version metadata)");
  app.add_option(
      "--node-pull-secret", node_pull_secret,
      "pull secret used when the spec names none (default /var/lib/kubelet/config.json)");
  CLI11_PARSE(app, argc, argv);

  try {
    lca::DaemonConfig cfg;
    if (config_given || std::filesystem::exists(config_file)) {
      cfg = lca::LoadConfigFile(config_file, cfg);
    }
    if (!sysroot.empty()) cfg.sysroot = sysroot;
    if (!state_dir.empty()) cfg.state_dir = state_dir;
    if (!socket.empty()) cfg.socket = socket;
    if (!socket_mode.empty()) cfg.socket_mode = lca::ParseMode(socket_mode, "--socket-mode");
    if (!proc_cmdline.empty()) cfg.proc_cmdline = proc_cmdline;
    if (!config_dir.empty()) cfg.config_dir = config_dir;
    if (!containers_root.empty()) cfg.containers_root = containers_root;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (!registries_conf.empty()) cfg.registries_conf = registries_conf;
    if (!running_version.empty()) cfg.running_version = running_version;
    if (!signature_policy.empty()) cfg.signature_policy = signature_policy;
    if (!node_pull_secret.empty()) cfg.node_pull_secret = node_pull_secret;
    lca::SetupLogging("lifecycle-agent", cfg.log_level);
    return lca::RunDaemon(cfg);
  } catch (const std::exception& e) {
    // Logging may not be set up yet: stderr reaches the journal either way.
    std::cerr << "lifecycle-agent: " << e.what() << "\n";
    return 1;
  }
}
