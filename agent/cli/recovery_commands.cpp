#include "agent/cli/recovery_commands.hpp"

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"
#include "common/timeutil.hpp"
#include "recovery/backup.hpp"
#include "recovery/layout.hpp"
#include "recovery/restore.hpp"
#include "recovery/settings.hpp"

namespace lca::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultConfig = recovery::kDefaultSettingsFile;

class Commands final : public RecoveryCommands {
 public:
  explicit Commands(CLI::App& app) {
    recovery_ = app.add_subcommand(
        "recovery", "Pre-upgrade backup to the recovery area and the restore from it");
    recovery_->require_subcommand(1);
    backup_ = recovery_->add_subcommand(
        "backup",
        "Back up etcd, static pods, /etc, /usr/local, /var/lib/kubelet and the "
        "MachineConfig files, and pin the booted deployment");
    restore_ = recovery_->add_subcommand(
        "restore", "Restore the host from the backup (phase 1, reboot, --resume: phases 2 and 3)");
    for (CLI::App* c : {backup_, restore_}) Common(c);

    backup_->add_option("--space-margin", space_margin_,
                        "bytes that must stay free on the recovery filesystem (default 10 GiB)");
    backup_
        ->add_option("--recovery-script", script_, "copied into the backup as upgrade-recovery.sh")
        ->capture_default_str();

    restore_->add_flag("--force", restore_opts_.force,
                       "continue when the booted deployment is not pinned");
    restore_->add_flag("--step", restore_opts_.step, "stop after each completed phase");
    restore_->add_flag("--resume", restore_opts_.resume,
                       "continue after the last recorded phase (after the reboot)");
    restore_->add_flag("--restart", restore_opts_.restart, "forget the progress and start over");
    hooks_ = restore_->add_option("--hooks-dir", hooks_dir_,
                                  "post-restore hooks, run in name order (host path; default " +
                                      restore_opts_.hooks_dir.string() + ")");
    waits_ = restore_->add_option("--wait-container", wait_containers_,
                                  "a container that must run again after the restore "
                                  "(repeatable; default TALM's five)");
    restore_->add_option("--wait-timeout", wait_timeout_, "how long to wait for them (20m)");
    restore_->add_option("--poll-interval", poll_interval_, "how often to look (10s)");
  }

  bool Selected() const override { return backup_->parsed() || restore_->parsed(); }

  int Run() override {
    const bool backup = backup_->parsed();
    try {
      SetupLogging("lcactl", log_level_, LogTarget::kStderr);
      HostConfig();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
    SystemProcessRunner runner;
    if (backup) {
      try {
        recovery::BackupOptions o;
        o.host = host_;
        o.dir = dir_;
        o.space_margin = space_margin_.value_or(
            config_.value("backupSpaceMarginBytes", recovery::kDefaultSpaceMargin));
        o.recovery_script = script_;
        recovery::TakeBackup(o, runner);
        std::cout << "Backup complete: " << host_.Host(dir_).string() << "\n";
        return 0;
      } catch (const recovery::RestoreInProgressError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return recovery::kExitRestoreInProgress;
      } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
      }
    }
    try {
      recovery::RestoreOptions o = restore_opts_;
      o.host = host_;
      o.dir = dir_;
      o.hooks_dir = hooks_->count() > 0
                        ? fs::path(hooks_dir_)
                        : fs::path(config_.value("restoreHooksDir", o.hooks_dir.string()));
      if (waits_->count() > 0) {
        o.wait_containers = wait_containers_;
      } else if (config_.contains("restoreWaitContainers")) {
        o.wait_containers = config_["restoreWaitContainers"].get<std::vector<std::string>>();
      }
      const std::string timeout = !wait_timeout_.empty()
                                      ? wait_timeout_
                                      : config_.value("restoreWaitTimeout", std::string("20m"));
      const std::string poll = !poll_interval_.empty()
                                   ? poll_interval_
                                   : config_.value("restorePollInterval", std::string("10s"));
      o.wait_timeout = ParseDuration(timeout);
      o.poll_interval = ParseDuration(poll);
      const char* prog_env = std::getenv("LCA_RECOVERY_PROGRAM");
      const std::string prog = prog_env != nullptr ? prog_env : "lcactl recovery restore";
      switch (recovery::RunRestore(o, runner)) {
        case recovery::RestoreOutcome::kRebootRequired:
          std::cerr << "Please reboot now with 'systemctl reboot', then run '" << prog
                    << " --resume'\n";
          return 0;
        case recovery::RestoreOutcome::kStageComplete:
          std::cout << "Stage complete. Use --step option to resume.\n";
          return 0;
        case recovery::RestoreOutcome::kComplete:
          std::cout << "Recovery complete\n";
          return 0;
      }
      return 1;
    } catch (const recovery::RestoreRefusedError& e) {
      std::cout << e.what() << "\n";  // TALM prints these on stdout
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }

 private:
  void Common(CLI::App* c) {
    c->add_option("--dir", dir_, "the backup's location (host path)")->capture_default_str();
    c->add_option(
         "--config", config_file_,
         std::string("recovery settings, JSON (default ") + kDefaultConfig + " when it exists)")
        ->envname("LCA_RECOVERY_CONFIG");
    c->add_option("--root", root_, "the host's root: every host path is under it (default /)");
    c->add_option("--sysroot", sysroot_, "the ostree sysroot (default <root>/sysroot)");
    c->add_option("--proc-cmdline", cmdline_,
                  "kernel command line file (default <root>/proc/cmdline)");
    c->add_option("--command-prefix", prefix_,
                  "argv put before every host command (systemctl, crictl, crio, setenforce, "
                  "getenforce); repeatable");
    c->add_option("--etcdctl", etcdctl_, "etcdctl program");
    c->add_option("--etcd-endpoints", endpoints_, "etcd client URLs (repeatable)");
    c->add_option("--log-level", log_level_, "trace, debug, info, warn, error")
        ->capture_default_str();
  }

  // Defaults, then the config file, then the flags given.
  void HostConfig() {
    const recovery::Settings settings = recovery::LoadSettings(config_file_);
    config_ = settings.raw;
    host_ = settings.host;
    if (!root_.empty()) host_.root = root_;
    if (!sysroot_.empty()) host_.sysroot = sysroot_;
    if (!cmdline_.empty()) host_.proc_cmdline = cmdline_;
    if (!prefix_.empty()) host_.command_prefix = prefix_;
    if (!etcdctl_.empty()) host_.etcd.etcdctl = etcdctl_;
    if (!endpoints_.empty()) host_.etcd.endpoints = endpoints_;
    if (script_.empty()) script_ = recovery::BackupOptionsFrom(settings).recovery_script;
  }

  CLI::App* recovery_ = nullptr;
  CLI::App* backup_ = nullptr;
  CLI::App* restore_ = nullptr;
  CLI::Option* hooks_ = nullptr;
  CLI::Option* waits_ = nullptr;
  std::string dir_ = std::string(recovery::layout::kDefaultDir);
  std::string config_file_, root_, sysroot_, cmdline_, etcdctl_, log_level_ = "info";
  std::vector<std::string> prefix_, endpoints_;
  std::optional<std::uint64_t> space_margin_;
  std::string script_;
  std::string hooks_dir_;
  std::vector<std::string> wait_containers_;
  std::string wait_timeout_, poll_interval_;
  recovery::RestoreOptions restore_opts_;
  recovery::HostConfig host_;
  Json config_ = Json::object();
};

}  // namespace

std::unique_ptr<RecoveryCommands> AddRecoveryCommands(CLI::App& app) {
  return std::make_unique<Commands>(app);
}

}  // namespace lca::cli
