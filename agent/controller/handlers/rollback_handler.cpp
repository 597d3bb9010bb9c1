// Manual Rollback (reference §6.1), declared in upgrade_handler.hpp.
#include <spdlog/spdlog.h>

#include "agent/api/conditions.hpp"
#include "agent/controller/handlers/upgrade_handler.hpp"
#include "agent/controller/host_view.hpp"
#include "agent/pivot/host_paths.hpp"
#include "agent/pivot/reboot.hpp"
#include "agent/store/object_store.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"
#include "common/timeutil.hpp"
#include "stateroot/ostree_sysroot.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

struct RollbackRun {
  StageContext& ctx;
  const PivotOptions& opts;
  HostView& host;
  sr::Deployment old;  // the deployment of the stateroot we pivoted from
};

void SetDefault(RollbackRun& r) { r.host.sysroot().SetDefault(r.old); }

void SaveObject(RollbackRun& r) {
  r.ctx.store.Update([&](api::ImageBasedUpgrade& o) {
    if (!o.status) o.status = api::Status{};
    o.status->rollback_availability_expiration.reset();
    api::ConditionWriter(*o.status, o.metadata.generation, Now())
        .RollbackInProgress("Completing rollback");
  });
  const fs::path dir = pivot::StaterootStateDir(r.ctx.paths.sysroot, r.old.stateroot);
  EnsureDir(dir, 0700);
  WriteFileAtomic(dir / state_layout::kObject, ToPrettyJson(api::ToJson(r.ctx.Object())), 0600);
}

void Reboot(RollbackRun& r) {
  pivot::RequestReboot(r.ctx.runner, PivotRebootCommand(r.opts), "rollback");
}

constexpr Step<RollbackRun> kRollbackSteps[] = {
    {"rollback.set-default", 1, &SetDefault},
    {"rollback.save-object", 1, &SaveObject},
    {"rollback.reboot", 1, &Reboot},
};

}  // namespace

std::vector<std::string> RollbackHandler::StepNames() {
  return lca::StepNames<RollbackRun>(kRollbackSteps);
}

Outcome RollbackHandler::Run(StageContext& ctx) {
  try {
    if (!ctx.after_pivot) return Outcome::Completed();  // the old stateroot is booted: done
    HostView& host = ctx.Host();
    host.BootedDeployment();
    ctx.Progress("Initiating rollback");
    const auto old = sr::RollbackTarget(host.sysroot().Deployments(), host.RequireBooted());
    if (!old) {
      throw Error(Errc::kNotFound,
                  "no deployment of another stateroot to roll back to (was it removed?)");
    }
    RollbackRun r{ctx, opts_, host, *old};
    ctx.RunSteps<RollbackRun>(kRollbackSteps, r);
    return Outcome::Rebooting();
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    return Outcome::Failed(e.what());
  }
}

}  // namespace lca
