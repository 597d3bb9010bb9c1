#include "agent/controller/handlers/upgrade_handler.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/controller/handlers/journaled_step.hpp"
#include "agent/pivot/auto_rollback.hpp"
#include "agent/pivot/extra_manifests.hpp"
#include "agent/pivot/hooks.hpp"
#include "agent/pivot/host_paths.hpp"
#include "agent/pivot/init_monitor_owner.hpp"
#include "agent/pivot/kubelet_certs.hpp"
#include "agent/pivot/reboot.hpp"
#include "agent/store/object_store.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"
#include "recovery/settings.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

struct Host {
  sr::BootedDeployment booted;
  sr::Deployment booted_deployment;
  std::string target;  // rhcos_<version>
};

Host LoadHost(const StageContext& ctx, const PivotOptions& opts, sr::OstreeSysroot& sysroot) {
  Host h;
  const auto booted = sr::FindBooted(ctx.paths.sysroot, ReadFile(opts.proc_cmdline));
  if (!booted) {
    throw Error(Errc::kInvalid, "the host is not booted from ostree (no ostree= in " +
                                    opts.proc_cmdline.string() + ")");
  }
  h.booted = *booted;
  const auto d = sysroot.Booted(*booted);
  if (!d) {
    throw Error(Errc::kNotFound, "the booted deployment " + booted->stateroot + " " +
                                     booted->checksum + "." + std::to_string(booted->serial) +
                                     " is not in the sysroot's deployment list");
  }
  h.booted_deployment = *d;
  h.target = sr::StaterootNameForVersion(ctx.Object().spec.seed_image_ref.version);
  return h;
}

std::optional<sr::Deployment> FirstOf(const std::vector<sr::Deployment>& deps,
                                      const std::string& stateroot) {
  for (const auto& d : deps) {
    if (d.stateroot == stateroot) return d;
  }
  return std::nullopt;
}

std::vector<std::string> RebootCommand(const PivotOptions& opts) {
  return opts.reboot_command.empty() ? pivot::DefaultRebootCommand() : opts.reboot_command;
}

std::map<std::string, std::string> HookEnv(const StageContext& ctx, const Host& h,
                                           const std::string& phase) {
  return {{"LCA_PHASE", phase},
          {"LCA_SYSROOT", ctx.paths.sysroot.string()},
          {"LCA_BOOTED_STATEROOT", h.booted.stateroot},
          {"LCA_TARGET_STATEROOT", h.target},
          {"LCA_TARGET_VAR", (pivot::StaterootRoot(ctx.paths.sysroot, h.target) / "var").string()},
          {"LCA_STATE_DIR", ctx.paths.state_dir.string()}};
}

std::string PinnedRecord(const Host& h) {
  return Json{{"stateroot", h.booted.stateroot},
              {"checksum", h.booted.checksum},
              {"serial", h.booted.serial}}
             .dump() +
         "\n";
}

// Last of the pre-pivot work, so the backup holds what the hooks changed. It pins the booted
// deployment too (the upgrade.pin step records the pin for cleanup either way) and removes only
// the booted stateroot's other deployments, never the new stateroot's.
void TakeRecoveryBackup(StageContext& ctx, const PivotOptions& opts) {
  const recovery::Settings settings = recovery::LoadSettings(opts.recovery_settings);
  recovery::BackupOptions backup = recovery::BackupOptionsFrom(settings);
  if (backup.host.sysroot.empty()) backup.host.sysroot = ctx.paths.sysroot;
  if (backup.host.proc_cmdline.empty()) backup.host.proc_cmdline = opts.proc_cmdline;
  const auto result = recovery::TakeBackup(backup, ctx.runner);
  spdlog::info("pre-upgrade recovery backup complete in {}", result.dir.string());
}

}  // namespace

Outcome UpgradeHandler::Run(StageContext& ctx) {
  try {
    return ctx.after_pivot ? PostPivot(ctx) : PrePivot(ctx);
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    return Outcome::Failed(e.what());
  }
}

Outcome UpgradeHandler::PrePivot(StageContext& ctx) {
  sr::OstreeSysroot sysroot(ctx.paths.sysroot);
  const Host h = LoadHost(ctx, opts_, sysroot);
  const auto ibu = ctx.Object();
  const auto target_dep = FirstOf(sysroot.Deployments(), h.target);
  if (!target_dep) {
    throw Error(Errc::kNotFound, "no deployment in stateroot " + h.target +
                                     ": Prep did not finish or the stateroot was removed; "
                                     "abort (Idle) and run Prep again");
  }
  const fs::path target_root = pivot::StaterootRoot(ctx.paths.sysroot, h.target);
  ctx.StartPhase(api::phase::kPrePivot);
  try {
    JournaledStep(ctx, "upgrade.pre-pivot-hooks", [&] {
      ctx.Progress("Running pre-pivot hooks");
      pivot::RunHooks(ctx.runner, {opts_.hooks_dir / "pre-pivot.d", HookEnv(ctx, h, "pre-pivot"),
                                   opts_.hook_timeout});
    });
    JournaledStep(ctx, "upgrade.export-manifests", [&] {
      if (ibu.spec.extra_manifests.empty()) return;
      ctx.Progress("Exporting Policy and Config Manifests");
      const auto groups = pivot::LoadExtraManifests(ctx.paths.config_dir, ibu.spec.extra_manifests);
      pivot::ExportExtraManifests(groups, target_root, "var/opt/extra-manifests");
    });
    JournaledStep(ctx, "upgrade.carry-agent", [&] {
      pivot::CarryAgent(h.booted_deployment.dir, target_dep->dir, target_root, opts_.agent_files);
      pivot::DecideInitMonitor(target_dep->dir, target_root);  // init_monitor_owner.hpp
    });
    if (opts_.recovery_backup) {
      JournaledStep(ctx, "upgrade.recovery-backup", [&] {
        ctx.Progress("Taking the pre-upgrade recovery backup");
        try {
          TakeRecoveryBackup(ctx, opts_);
        } catch (const std::exception& e) {
          throw Error(Errc::kInvalid, std::string("pre-upgrade recovery backup: ") + e.what());
        }
      });
    }
    ctx.Progress(api::msg::kInProgress);
    ctx.StopPhase(api::phase::kPrePivot);
    JournaledStep(ctx, "upgrade.save-object", [&] {
      // What the agent in the new stateroot starts from (reference §5.1 step 9).
      const fs::path dir = pivot::StaterootStateDir(ctx.paths.sysroot, h.target);
      EnsureDir(dir, 0700);
      WriteFileAtomic(dir / pivot::kObjectFile, ToPrettyJson(api::ToJson(ctx.Object())), 0600);
      // Finalize there removes the stateroot we came from, and only that one.
      WriteFileAtomic(dir / kPinnedFile, PinnedRecord(h), 0600);
    });
    JournaledStep(ctx, "upgrade.pin", [&] {
      // Recorded first: a kill between the two leaves a record of a pin that may not exist,
      // which unpinning tolerates; the other order could leave a pin nobody removes.
      WriteFileAtomic(ctx.paths.state_dir / kPinnedFile, PinnedRecord(h), 0600);
      sysroot.SetPinned(h.booted_deployment, true);
    });
    // The pivot: from here the next boot is the new release.
    JournaledStep(ctx, "upgrade.set-default", [&] {
      const auto d = FirstOf(sysroot.Deployments(), h.target);
      if (!d) throw Error(Errc::kNotFound, "the deployment in " + h.target + " disappeared");
      sysroot.SetDefault(*d);
    });
    JournaledStep(ctx, "upgrade.seal", [&] {
      // Reference §5.1 step 10: what this stateroot shows if it is booted again without lca
      // rolling back (someone picks the old boot entry).
      auto copy = ctx.Object();
      if (!copy.status) copy.status = api::Status{};
      api::ConditionWriter(*copy.status, copy.metadata.generation, Now())
          .UpgradeFailed(kUncontrolledRollback);
      ctx.store.SealForNextBoot(copy);
    });
    JournaledStep(ctx, "upgrade.reboot", [&] {
      ctx.Progress("Rebooting into " + h.target);
      pivot::RequestReboot(ctx.runner, RebootCommand(opts_), "upgrade");
    });
    return Outcome::Rebooting();
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) throw;
    // Never leave the host set to boot a release whose upgrade failed before the reboot.
    if (ctx.journal.IsDone("upgrade.set-default")) {
      try {
        sysroot.SetDefault(h.booted_deployment);
        spdlog::warn("Upgrade failed before the reboot: {} is the default again",
                     h.booted.stateroot);
      } catch (const std::exception& de) {
        spdlog::error("Upgrade failed and restoring the default deployment failed too: {}",
                      de.what());
      }
    }
    throw;
  }
}

Outcome UpgradeHandler::PostPivot(StageContext& ctx) {
  sr::OstreeSysroot sysroot(ctx.paths.sysroot);
  const Host h = LoadHost(ctx, opts_, sysroot);
  const auto old = sr::RollbackTarget(sysroot.Deployments(), h.booted);
  if (old && !ctx.Object().status.value_or(api::Status{}).rollback_availability_expiration) {
    try {
      const auto when = pivot::RollbackAvailabilityExpiration(
          pivot::StaterootRoot(ctx.paths.sysroot, old->stateroot));
      ctx.store.Update([&](api::ImageBasedUpgrade& o) {
        if (!o.status) o.status = api::Status{};
        o.status->rollback_availability_expiration = when;
      });
    } catch (const std::exception& e) {
      // Reference §6.3: only logged; the field stays unset.
      spdlog::warn("rollbackAvailabilityExpiration: {}", e.what());
    }
  }
  ctx.StartPhase(api::phase::kPostPivot);
  try {
    JournaledStep(ctx, "upgrade.post-pivot-hooks", [&] {
      ctx.Progress("Running post-pivot hooks");
      pivot::RunHooks(ctx.runner, {opts_.hooks_dir / "post-pivot.d", HookEnv(ctx, h, "post-pivot"),
                                   opts_.hook_timeout});
    });
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) throw;
    const auto config =
        pivot::ReadAutoRollbackConfig(ctx.paths.state_dir / pivot::kAutoRollbackConfigFile);
    if (!config || !config->postpivot_enabled) {
      spdlog::warn("post-pivot hook failed; automatic rollback is {}",
                   config ? "disabled (post-reboot-config)" : "not configured");
      throw;
    }
    const std::string message = std::string("Rollback due to postpivot failure: ") + e.what();
    ctx.Progress(message);
    pivot::RollbackRequest req{ctx.paths.sysroot, ReadFile(opts_.proc_cmdline), ctx.paths.state_dir,
                               RebootCommand(opts_), message};
    pivot::InitiateRollback(ctx.runner, req);
    return Outcome::Rebooting();
  }
  JournaledStep(ctx, "upgrade.disable-init-monitor", [&] {
    pivot::StopInitMonitor(ctx.runner, opts_.systemctl, ctx.paths.state_dir,
                           h.booted_deployment.dir);
  });
  ctx.StopPhase(api::phase::kPostPivot);
  return Outcome::Completed();
}

Outcome RollbackHandler::Run(StageContext& ctx) {
  try {
    if (!ctx.after_pivot) return Outcome::Completed();  // the old stateroot is booted: done
    sr::OstreeSysroot sysroot(ctx.paths.sysroot);
    const Host h = LoadHost(ctx, opts_, sysroot);
    ctx.Progress("Initiating rollback");
    const auto old = sr::RollbackTarget(sysroot.Deployments(), h.booted);
    if (!old) {
      throw Error(Errc::kNotFound,
                  "no deployment of another stateroot to roll back to (was it removed?)");
    }
    JournaledStep(ctx, "rollback.set-default", [&] { sysroot.SetDefault(*old); });
    ctx.store.Update([&](api::ImageBasedUpgrade& o) {
      if (!o.status) o.status = api::Status{};
      o.status->rollback_availability_expiration.reset();
      api::ConditionWriter(*o.status, o.metadata.generation, Now())
          .RollbackInProgress("Completing rollback");
    });
    JournaledStep(ctx, "rollback.save-object", [&] {
      const fs::path dir = pivot::StaterootStateDir(ctx.paths.sysroot, old->stateroot);
      EnsureDir(dir, 0700);
      WriteFileAtomic(dir / pivot::kObjectFile, ToPrettyJson(api::ToJson(ctx.Object())), 0600);
    });
    JournaledStep(ctx, "rollback.reboot",
                  [&] { pivot::RequestReboot(ctx.runner, RebootCommand(opts_), "rollback"); });
    return Outcome::Rebooting();
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    return Outcome::Failed(e.what());
  }
}

}  // namespace lca
