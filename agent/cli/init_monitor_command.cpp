#include "agent/cli/init_monitor_command.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "agent/daemon/config.hpp"
#include "agent/pivot/init_monitor.hpp"
#include "agent/pivot/reboot.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"

namespace lca::cli {

namespace {

struct Args {
  bool monitor = false;
  std::string config_file = kDefaultConfigFile;
  bool config_given = false;
  std::string sysroot, state_dir, proc_cmdline;
  std::vector<std::string> reboot_command;
};

}  // namespace

std::function<int()> AddInitMonitorCommand(CLI::App& app) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "init-monitor",
      "Roll back to the old stateroot if the upgrade is not completed in time (run by "
      "lca-init-monitor.service after the pivot)");
  cmd->add_flag("--monitor", args->monitor, "watch and roll back on timeout")->required();
  cmd->add_option_function<std::string>(
      "--config",
      [args](const std::string& v) { args->config_file = v, args->config_given = true; },
      std::string("lifecycle-agent's configuration file (default ") + kDefaultConfigFile +
          ", used when present)");
  cmd->add_option("--sysroot", args->sysroot, "ostree sysroot (default: the config's, or /)");
  cmd->add_option("--state-dir", args->state_dir,
                  "the booted stateroot's lca state dir (default: the config's, or /var/lib/lca)");
  cmd->add_option("--proc-cmdline", args->proc_cmdline,
                  "kernel command line (default: the config's, or /proc/cmdline)");
  cmd->add_option("--reboot-command", args->reboot_command,
                  "argv that requests the reboot (default: the config's, or systemd-run ... "
                  "systemctl reboot)");
  return [cmd, args]() -> int {
    if (!*cmd) return -1;
    try {
      DaemonConfig cfg;
      if (args->config_given || std::filesystem::exists(args->config_file)) {
        cfg = LoadConfigFile(args->config_file, cfg);
      }
      SetupLogging("lca-init-monitor", cfg.log_level, ParseLogTarget(cfg.log_format));
      pivot::InitMonitorOptions opts;
      opts.sysroot = args->sysroot.empty() ? cfg.sysroot : std::filesystem::path(args->sysroot);
      opts.state_dir =
          args->state_dir.empty() ? cfg.state_dir : std::filesystem::path(args->state_dir);
      opts.proc_cmdline =
          args->proc_cmdline.empty() ? cfg.proc_cmdline : std::filesystem::path(args->proc_cmdline);
      opts.reboot_command = !args->reboot_command.empty() ? args->reboot_command
                            : !cfg.reboot_command.empty() ? cfg.reboot_command
                                                          : pivot::DefaultRebootCommand();
      SystemProcessRunner runner;
      pivot::RunInitMonitor(runner, opts);
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "error: init-monitor: " << e.what() << "\n";
      return 1;
    }
  };
}

}  // namespace lca::cli
