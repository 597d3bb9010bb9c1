#include "agent/controller/stage_handler.hpp"

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/controller/host_view.hpp"
#include "agent/metrics/progress.hpp"
#include "agent/store/object_store.hpp"

namespace lca {

std::string_view WorkName(Work w) {
  switch (w) {
    case Work::kPrep:
      return "Prep";
    case Work::kUpgrade:
      return "Upgrade";
    case Work::kRollback:
      return "Rollback";
    case Work::kAbort:
      return "Abort";
    case Work::kFinalize:
      return "Finalize";
  }
  return "Unknown";
}

std::string_view OutcomeName(OutcomeKind k) {
  switch (k) {
    case OutcomeKind::kCompleted:
      return "Completed";
    case OutcomeKind::kFailed:
      return "Failed";
    case OutcomeKind::kRequeue:
      return "Requeue";
    case OutcomeKind::kCancelled:
      return "Cancelled";
    case OutcomeKind::kRebooting:
      return "Rebooting";
  }
  return "Unknown";
}

void CancelToken::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool CancelToken::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [&] { return cancelled_.load(); });
}

namespace {

std::optional<api::Stage> StageOfWork(Work w) {
  switch (w) {
    case Work::kPrep:
      return api::Stage::kPrep;
    case Work::kUpgrade:
      return api::Stage::kUpgrade;
    case Work::kRollback:
      return api::Stage::kRollback;
    default:
      return std::nullopt;
  }
}

}  // namespace

void StageContext::Progress(std::string_view message) const {
  const auto stage = StageOfWork(work);
  store.Update([&](api::ImageBasedUpgrade& ibu) {
    if (!ibu.status) ibu.status = api::Status{};
    api::ConditionWriter w(*ibu.status, ibu.metadata.generation, Now());
    // Only while the work is still running: a late progress line must not revive it.
    if (stage) {
      const auto* c = api::FindCondition(*ibu.status, api::InProgressType(*stage));
      if (c != nullptr && c->status == api::kTrue) {
        w.Set(api::InProgressType(*stage), api::kTrue, api::reason::kInProgress, message);
      }
      return;
    }
    const auto reason = work == Work::kAbort ? api::reason::kAborting : api::reason::kFinalizing;
    const auto* idle = api::FindCondition(*ibu.status, api::ctype::kIdle);
    if (idle != nullptr && idle->status == api::kFalse && idle->reason == reason) {
      w.IdleInProgress(reason, message);
    }
  });
}

void StageContext::StartPhase(std::string_view phase) const {
  const auto stage = StageOfWork(work);
  if (!stage) return;
  store.Update([&](api::ImageBasedUpgrade& ibu) {
    if (!ibu.status) ibu.status = api::Status{};
    api::StartPhaseHistory(*ibu.status, *stage, phase, Now());
  });
}

void StageContext::StopPhase(std::string_view phase) const {
  const auto stage = StageOfWork(work);
  if (!stage) return;
  store.Update([&](api::ImageBasedUpgrade& ibu) {
    if (!ibu.status) ibu.status = api::Status{};
    api::StopPhaseHistory(*ibu.status, *stage, phase, Now());
  });
}

api::ImageBasedUpgrade StageContext::Object() const { return store.Get(); }

HostView& StageContext::Host() {
  if (!host_view) {
    host_view = std::make_shared<HostView>(paths.sysroot, paths.proc_cmdline,
                                           Object().spec.seed_image_ref.version);
  }
  return *host_view;
}

StepPolicy StageContext::StepsPolicy() {
  StepPolicy policy;
  policy.max_attempts = max_step_attempts;
  policy.give_up_hint =
      "find out from the agent's log why it stops there, then abort (stage "
      "Idle); maxStepAttempts in the lifecycle-agent configuration sets the "
      "limit (" +
      std::to_string(max_step_attempts) + ")";
  policy.cancelled = [this] { return cancel.Cancelled(); };
  policy.on_done = [](const std::string& step, std::chrono::milliseconds took, double) {
    metrics::ReportStepDone(step, static_cast<double>(took.count()) / 1000.0);
  };
  return policy;
}

}  // namespace lca
