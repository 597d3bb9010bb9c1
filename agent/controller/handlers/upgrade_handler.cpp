#include "agent/controller/handlers/upgrade_handler.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/controller/host_view.hpp"
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
#include "common/state_layout.hpp"
#include "common/timeutil.hpp"
#include "recovery/settings.hpp"
#include "stateroot/ostree_sysroot.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

// What every Upgrade step works with: the pass's host and, before the pivot, the target.
struct UpgradeRun {
  StageContext& ctx;
  const PivotOptions& opts;
  HostView& host;
  api::ImageBasedUpgrade ibu;
  sr::Deployment target_dep;  // the new stateroot's deployment (before the pivot)
  fs::path target_root;       // <sysroot>/ostree/deploy/<target>
};

std::optional<sr::Deployment> FirstOf(const std::vector<sr::Deployment>& deps,
                                      const std::string& stateroot) {
  for (const auto& d : deps) {
    if (d.stateroot == stateroot) return d;
  }
  return std::nullopt;
}

std::map<std::string, std::string> HookEnv(UpgradeRun& u, const std::string& phase) {
  const fs::path& sysroot = u.ctx.paths.sysroot;
  return {{"LCA_PHASE", phase},
          {"LCA_SYSROOT", sysroot.string()},
          {"LCA_BOOTED_STATEROOT", u.host.RequireBooted().stateroot},
          {"LCA_TARGET_STATEROOT", u.host.target()},
          {"LCA_TARGET_VAR", (pivot::StaterootRoot(sysroot, u.host.target()) / "var").string()},
          {"LCA_STATE_DIR", u.ctx.paths.state_dir.string()}};
}

std::string PinnedRecord(const sr::BootedDeployment& b) {
  return Json{{"stateroot", b.stateroot}, {"checksum", b.checksum}, {"serial", b.serial}}.dump() +
         "\n";
}

// ---- the steps before the pivot (the old stateroot is booted) ----

void PrePivotHooks(UpgradeRun& u) {
  u.ctx.Progress("Running pre-pivot hooks");
  pivot::RunHooks(u.ctx.runner,
                  {u.opts.hooks_dir / "pre-pivot.d", HookEnv(u, "pre-pivot"), u.opts.hook_timeout});
}

void ExportManifests(UpgradeRun& u) {
  if (u.ibu.spec.extra_manifests.empty()) return;
  u.ctx.Progress("Exporting Policy and Config Manifests");
  const auto groups = pivot::LoadExtraManifests(u.ctx.paths.config_dir, u.ibu.spec.extra_manifests);
  pivot::ExportExtraManifests(groups, u.target_root, "var/opt/extra-manifests");
}

void CarryAgent(UpgradeRun& u) {
  pivot::CarryAgent(u.host.BootedDeployment().dir, u.target_dep.dir, u.target_root,
                    u.opts.agent_files);
  // One watchdog per boot: the seed's own monitor when it brought one, else ours.
  pivot::DecideInitMonitor(u.target_dep.dir, u.target_root);
}

// Last of the pre-pivot work, so the backup holds what the hooks changed. It pins the booted
// deployment too (the upgrade.pin step records the pin for cleanup either way) and removes only
// the booted stateroot's other deployments, never the new stateroot's. Off unless configured.
void RecoveryBackup(UpgradeRun& u) {
  if (!u.opts.recovery_backup) return;
  u.ctx.Progress("Taking the pre-upgrade recovery backup");
  try {
    const recovery::Settings settings = recovery::LoadSettings(u.opts.recovery_settings);
    recovery::BackupOptions backup = recovery::BackupOptionsFrom(settings);
    if (backup.host.sysroot.empty()) backup.host.sysroot = u.ctx.paths.sysroot;
    if (backup.host.proc_cmdline.empty()) backup.host.proc_cmdline = u.ctx.paths.proc_cmdline;
    backup.max_step_attempts = u.ctx.max_step_attempts;
    const auto result = recovery::TakeBackup(backup, u.ctx.runner);
    spdlog::info("pre-upgrade recovery backup complete in {}", result.dir.string());
  } catch (const std::exception& e) {
    throw Error(Errc::kInvalid, std::string("pre-upgrade recovery backup: ") + e.what());
  }
}

void SaveObject(UpgradeRun& u) {
  u.ctx.Progress(api::msg::kInProgress);
  u.ctx.StopPhase(api::phase::kPrePivot);
  // What the agent in the new stateroot starts from (reference §5.1 step 9).
  const fs::path dir = pivot::StaterootStateDir(u.ctx.paths.sysroot, u.host.target());
  EnsureDir(dir, 0700);
  WriteFileAtomic(dir / state_layout::kObject, ToPrettyJson(api::ToJson(u.ctx.Object())), 0600);
  // Finalize there removes the stateroot we came from, and only that one.
  WriteFileAtomic(dir / state_layout::kPinned, PinnedRecord(u.host.RequireBooted()), 0600);
}

void Pin(UpgradeRun& u) {
  // Recorded first: a kill between the two leaves a record of a pin that may not exist,
  // which unpinning tolerates; the other order could leave a pin nobody removes.
  WriteFileAtomic(u.ctx.paths.state_dir / state_layout::kPinned,
                  PinnedRecord(u.host.RequireBooted()), 0600);
  u.host.sysroot().SetPinned(u.host.BootedDeployment(), true);
}

// The pivot: from here the next boot is the new release.
void SetDefault(UpgradeRun& u) {
  const auto d = FirstOf(u.host.sysroot().Deployments(), u.host.target());
  if (!d) throw Error(Errc::kNotFound, "the deployment in " + u.host.target() + " disappeared");
  u.host.sysroot().SetDefault(*d);
}

// Never leave the host set to boot a release whose upgrade failed before the reboot.
void UndoSetDefault(UpgradeRun& u) {
  u.host.sysroot().SetDefault(u.host.BootedDeployment());
  spdlog::warn("Upgrade failed before the reboot: {} is the default again",
               u.host.RequireBooted().stateroot);
}

void Seal(UpgradeRun& u) {
  // Reference §5.1 step 10: what this stateroot shows if it is booted again without lca
  // rolling back (someone picks the old boot entry).
  auto copy = u.ctx.Object();
  if (!copy.status) copy.status = api::Status{};
  api::ConditionWriter(*copy.status, copy.metadata.generation, Now())
      .UpgradeFailed(UpgradeHandler::kUncontrolledRollback);
  u.ctx.store.SealForNextBoot(copy);
}

void Reboot(UpgradeRun& u) {
  u.ctx.Progress("Rebooting into " + u.host.target());
  pivot::RequestReboot(u.ctx.runner, PivotRebootCommand(u.opts), "upgrade");
}

constexpr Step<UpgradeRun> kPrePivotSteps[] = {
    {"upgrade.pre-pivot-hooks", 3, &PrePivotHooks},
    {"upgrade.export-manifests", 1, &ExportManifests},
    {"upgrade.carry-agent", 1, &CarryAgent},
    {"upgrade.recovery-backup", 5, &RecoveryBackup},
    {"upgrade.save-object", 1, &SaveObject},
    {"upgrade.pin", 1, &Pin},
    {"upgrade.set-default", 1, &SetDefault, &UndoSetDefault},
    {"upgrade.seal", 1, &Seal},
    {"upgrade.reboot", 1, &Reboot},
};

// ---- the steps after the pivot (the new stateroot is booted) ----

void PostPivotHooks(UpgradeRun& u) {
  u.ctx.Progress("Running post-pivot hooks");
  pivot::RunHooks(u.ctx.runner, {u.opts.hooks_dir / "post-pivot.d", HookEnv(u, "post-pivot"),
                                 u.opts.hook_timeout});
}

// Stops and disables the one init monitor of this boot (init_monitor_owner.hpp).
void DisableInitMonitorStep(UpgradeRun& u) {
  pivot::StopInitMonitor(u.ctx.runner, u.opts.systemctl, u.ctx.paths.state_dir,
                         u.host.BootedDeployment().dir);
}

constexpr const char* kPostPivotHooksStep = "upgrade.post-pivot-hooks";

constexpr Step<UpgradeRun> kPostPivotSteps[] = {
    {kPostPivotHooksStep, 3, &PostPivotHooks},
    {"upgrade.disable-init-monitor", 1, &DisableInitMonitorStep},
};

// Reference §6.3: the old release's kubelet certificates bound how long a rollback works; only
// logged when unreadable, the field stays unset.
void RecordRollbackAvailability(UpgradeRun& u) {
  const auto old = sr::RollbackTarget(u.host.sysroot().Deployments(), u.host.RequireBooted());
  if (!old || u.ibu.status.value_or(api::Status{}).rollback_availability_expiration) return;
  try {
    const auto when = pivot::RollbackAvailabilityExpiration(
        pivot::StaterootRoot(u.ctx.paths.sysroot, old->stateroot));
    u.ctx.store.Update([&](api::ImageBasedUpgrade& o) {
      if (!o.status) o.status = api::Status{};
      o.status->rollback_availability_expiration = when;
    });
  } catch (const std::exception& e) {
    spdlog::warn("rollbackAvailabilityExpiration: {}", e.what());
  }
}

// A failed post-pivot hook rolls back by itself when the seed's post-reboot config allows it.
Outcome AutoRollback(UpgradeRun& u, const std::exception& e) {
  const auto config =
      pivot::ReadAutoRollbackConfig(u.ctx.paths.state_dir / pivot::kAutoRollbackConfigFile);
  if (!config || !config->postpivot_enabled) {
    spdlog::warn("post-pivot hook failed; automatic rollback is {}",
                 config ? "disabled (post-reboot-config)" : "not configured");
    throw;
  }
  const std::string message = std::string("Rollback due to postpivot failure: ") + e.what();
  u.ctx.Progress(message);
  pivot::RollbackRequest req{u.ctx.paths.sysroot, u.host.Cmdline(), u.ctx.paths.state_dir,
                             PivotRebootCommand(u.opts), message};
  pivot::InitiateRollback(u.ctx.runner, req);
  return Outcome::Rebooting();
}

bool FailedIn(StageContext& ctx, const char* step) {
  const JournalStep* s = ctx.journal.Find(step);
  return s != nullptr && s->state == "failed";
}

}  // namespace

std::vector<std::string> PivotRebootCommand(const PivotOptions& opts) {
  return opts.reboot_command.empty() ? pivot::DefaultRebootCommand() : opts.reboot_command;
}

std::vector<std::string> UpgradeHandler::PrePivotStepNames() {
  return StepNames<UpgradeRun>(kPrePivotSteps);
}

std::vector<std::string> UpgradeHandler::PostPivotStepNames() {
  return StepNames<UpgradeRun>(kPostPivotSteps);
}

Outcome UpgradeHandler::Run(StageContext& ctx) {
  try {
    return ctx.after_pivot ? PostPivot(ctx) : PrePivot(ctx);
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    return Outcome::Failed(e.what());
  }
}

Outcome UpgradeHandler::PrePivot(StageContext& ctx) {
  UpgradeRun u{ctx, opts_, ctx.Host(), ctx.Object(), {}, {}};
  u.host.BootedDeployment();  // the host must be what the steps expect before any runs
  const auto target_dep = FirstOf(u.host.sysroot().Deployments(), u.host.target());
  if (!target_dep) {
    throw Error(Errc::kNotFound, "no deployment in stateroot " + u.host.target() +
                                     ": Prep did not finish or the stateroot was removed; "
                                     "abort (Idle) and run Prep again");
  }
  u.target_dep = *target_dep;
  u.target_root = pivot::StaterootRoot(ctx.paths.sysroot, u.host.target());
  ctx.StartPhase(api::phase::kPrePivot);
  ctx.RunSteps<UpgradeRun>(kPrePivotSteps, u);
  return Outcome::Rebooting();
}

Outcome UpgradeHandler::PostPivot(StageContext& ctx) {
  UpgradeRun u{ctx, opts_, ctx.Host(), ctx.Object(), {}, {}};
  u.host.BootedDeployment();
  RecordRollbackAvailability(u);
  ctx.StartPhase(api::phase::kPostPivot);
  try {
    ctx.RunSteps<UpgradeRun>(kPostPivotSteps, u);
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled || !FailedIn(ctx, kPostPivotHooksStep)) throw;
    return AutoRollback(u, e);
  }
  ctx.StopPhase(api::phase::kPostPivot);
  return Outcome::Completed();
}

}  // namespace lca
