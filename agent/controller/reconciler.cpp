#include "agent/controller/reconciler.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/api/stage_rules.hpp"
#include "agent/controller/transition_table.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"
#include "stateroot/boot_cmdline.hpp"

namespace lca {
namespace {

// The journal fields a stage's records carry: the stage and, once a seed is named, the
// stateroot the upgrade deploys (the "deployment" an operator greps for).
LogFields StageLogFields(const api::ImageBasedUpgrade& ibu) {
  LogFields f = {{"LCA_STAGE", std::string(api::StageName(ibu.spec.stage))}};
  if (!ibu.spec.seed_image_ref.version.empty()) {
    f.emplace_back("LCA_DEPLOYMENT",
                   stateroot::StaterootNameForVersion(ibu.spec.seed_image_ref.version));
  }
  return f;
}

}  // namespace

namespace annotation {
constexpr const char* kManualCleanupDone = "lca.openshift.io/manual-cleanup-done";
}  // namespace annotation

namespace {

// What lca.openshift.io/manual-cleanup-done does, by the state it finds: a human says the
// failed work was finished (or its cause fixed) by hand, so it runs again. The first row that
// applies consumes the annotation; none applies: the annotation stays for a later state.
struct ManualCleanupRow {
  bool (*applies)(const api::ImageBasedUpgrade&);
  void (*rerun)(api::ImageBasedUpgrade&);
  const char* log;
};

bool IdleFailedWith(const api::ImageBasedUpgrade& o, std::string_view reason) {
  const auto* idle = api::FindCondition(*o.status, api::ctype::kIdle);
  return idle != nullptr && idle->status == api::kFalse && idle->reason == reason;
}

bool AbortFailed(const api::ImageBasedUpgrade& o) {
  return IdleFailedWith(o, api::reason::kAbortFailed);
}
bool FinalizeFailed(const api::ImageBasedUpgrade& o) {
  return IdleFailedWith(o, api::reason::kFinalizeFailed);
}
// The documented exit from "Rollback failed" (the Go operator has none): once the cause is
// fixed, the annotation runs the rollback again.
bool RollbackFailed(const api::ImageBasedUpgrade& o) {
  return api::IsStageFailed(*o.status, api::Stage::kRollback) &&
         o.spec.stage == api::Stage::kRollback;
}

void RerunAbort(api::ImageBasedUpgrade& o) {
  api::ConditionWriter(*o.status, o.metadata.generation, Now())
      .IdleInProgress(api::reason::kAborting, api::msg::kAborting);
}
void RerunFinalize(api::ImageBasedUpgrade& o) {
  api::ConditionWriter(*o.status, o.metadata.generation, Now())
      .IdleInProgress(api::reason::kFinalizing, api::msg::kFinalizing);
}
void RerunRollback(api::ImageBasedUpgrade& o) {
  api::RemoveCondition(*o.status, api::ctype::kRollbackCompleted);
  api::ConditionWriter(*o.status, o.metadata.generation, Now())
      .RollbackInProgress(api::msg::kRollbackRequested);
}

constexpr ManualCleanupRow kManualCleanupRows[] = {
    {&AbortFailed, &RerunAbort, "manual cleanup reported done: running abort cleanup again"},
    {&FinalizeFailed, &RerunFinalize,
     "manual cleanup reported done: running finalize cleanup again"},
    {&RollbackFailed, &RerunRollback,
     "manual-cleanup-done on a failed Rollback: running Rollback again"},
};

void ApplyManualCleanupDone(api::ImageBasedUpgrade& obj) {
  if (obj.metadata.annotations.count(annotation::kManualCleanupDone) == 0) return;
  for (const auto& row : kManualCleanupRows) {
    if (!row.applies(obj)) continue;
    obj.metadata.annotations.erase(annotation::kManualCleanupDone);
    row.rerun(obj);
    spdlog::info("{}", row.log);
    return;
  }
}

}  // namespace

std::optional<Work> ActiveWork(const api::ImageBasedUpgrade& ibu) {
  if (!ibu.status) return std::nullopt;
  const auto stage = api::InProgressStage(*ibu.status);
  if (!stage) return std::nullopt;
  switch (*stage) {
    case api::Stage::kIdle: {
      const auto* idle = api::FindCondition(*ibu.status, api::ctype::kIdle);
      if (idle->reason == api::reason::kAborting) return Work::kAbort;
      if (idle->reason == api::reason::kFinalizing) return Work::kFinalize;
      return std::nullopt;  // AbortFailed / FinalizeFailed wait for manual-cleanup-done
    }
    case api::Stage::kPrep:
      return Work::kPrep;
    case api::Stage::kUpgrade:
      return Work::kUpgrade;
    case api::Stage::kRollback:
      return Work::kRollback;
  }
  return std::nullopt;
}

Reconciler::Reconciler(Deps deps, std::vector<std::unique_ptr<StageHandler>> handlers)
    : deps_(std::move(deps)) {
  for (auto& h : handlers) {
    const Work w = h->work();
    handlers_[w] = std::move(h);
  }
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !loop_.joinable()) return;
    stopping_ = true;
    if (worker_cancel_) worker_cancel_->Cancel();
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (worker_.joinable()) worker_.join();
}

void Reconciler::Trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

bool Reconciler::WaitQuiescent(std::chrono::milliseconds timeout,
                               std::chrono::milliseconds horizon) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    const bool due_soon = due_ && *due_ - std::chrono::steady_clock::now() < horizon;
    return !worker_running_ && !worker_outcome_ && !triggered_ && !in_pass_ && !due_soon;
  });
}

void Reconciler::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto wake = std::chrono::steady_clock::now() + deps_.heartbeat_interval;
      if (due_ && *due_ < wake) wake = *due_;
      cv_.wait_until(lock, wake, [&] {
        return stopping_ || triggered_ || worker_outcome_.has_value() ||
               (due_ && *due_ <= std::chrono::steady_clock::now());
      });
      if (stopping_) return;
      const bool due_now = due_ && *due_ <= std::chrono::steady_clock::now();
      if (!triggered_ && !worker_outcome_ && !due_now) {
        lock.unlock();
        if (deps_.heartbeat) deps_.heartbeat();
        continue;
      }
      triggered_ = false;
      if (due_now) due_.reset();
      in_pass_ = true;
    }
    try {
      ApplyFinishedWork();
      Pass();
    } catch (const std::exception& e) {
      spdlog::error("reconcile: {} (retrying in {}s)", e.what(), deps_.error_backoff.count());
      std::lock_guard lock(mu_);
      due_ = std::chrono::steady_clock::now() + deps_.error_backoff;
    }
    {
      std::lock_guard lock(mu_);
      in_pass_ = false;
    }
    cv_.notify_all();
    if (deps_.heartbeat) deps_.heartbeat();
  }
}

void Reconciler::ApplyFinishedWork() {
  std::optional<Outcome> outcome;
  Work work;
  {
    std::lock_guard lock(mu_);
    if (!worker_outcome_) return;
    outcome = std::move(worker_outcome_);
    worker_outcome_.reset();
    work = worker_work_;
  }
  if (worker_.joinable()) worker_.join();
  {
    std::lock_guard lock(mu_);
    worker_running_ = false;
    worker_cancel_.reset();
  }

  auto effect = LookupTransition(work, outcome->kind);
  if (!effect) {
    // A handler returned something the table has no row for: an agent bug. Fail the work
    // loudly rather than leave the object in a state nobody drives.
    spdlog::critical("no transition for work {} outcome {}: failing it", WorkName(work),
                     OutcomeName(outcome->kind));
    outcome =
        Outcome::Failed("internal error: " + std::string(WorkName(work)) +
                        " returned unexpected outcome " + std::string(OutcomeName(outcome->kind)));
    effect = LookupTransition(work, OutcomeKind::kFailed);
  }
  {
    const auto obj = deps_.store.Get();
    LogFields fields = StageLogFields(obj);
    fields.emplace_back("LCA_WORK", std::string(WorkName(work)));
    fields.emplace_back("LCA_OUTCOME", std::string(OutcomeName(outcome->kind)));
    fields.emplace_back("LCA_TRANSITION", std::string(EffectName(*effect)));
    LogEvent(
        spdlog::level::info, message_id::kStageTransition, fields,
        fmt::format("{}: {} -> {}{}{}", WorkName(work), OutcomeName(outcome->kind),
                    EffectName(*effect), outcome->message.empty() ? "" : ": ", outcome->message));
  }
  if (outcome->kind == OutcomeKind::kRebooting) {
    // The host is going down; running the work again in this boot would reboot twice.
    std::lock_guard lock(mu_);
    awaiting_reboot_ = true;
    spdlog::info("{}: reboot requested; no more work in this boot", WorkName(work));
  }
  if (*effect == Effect::kRunAgain) {
    std::lock_guard lock(mu_);
    due_ = std::chrono::steady_clock::now() + outcome->requeue_after;
    return;
  }
  const bool after_pivot = AfterPivot(deps_.store.Get());
  deps_.store.Update([&](api::ImageBasedUpgrade& ibu) {
    ApplyEffect(ibu, *effect, outcome->message, Now());
    api::RefreshStatus(ibu, after_pivot);
  });
  if (*effect == Effect::kResetToIdle) deps_.journal.Clear();
}

bool Reconciler::AfterPivot(const api::ImageBasedUpgrade& ibu) const {
  return deps_.after_pivot ? deps_.after_pivot(ibu) : false;
}

void Reconciler::Pass() {
  api::ImageBasedUpgrade ibu = deps_.store.Get();
  if (ibu.metadata.name != api::kName) {
    spdlog::error("ignoring ImageBasedUpgrade named '{}': only '{}' is reconciled",
                  ibu.metadata.name, api::kName);
    return;
  }
  const bool after_pivot = AfterPivot(ibu);

  ibu = deps_.store.Update([&](api::ImageBasedUpgrade& obj) {
    if (!obj.status) obj.status = api::Status{};
    ApplyManualCleanupDone(obj);
    if (api::IsTransitionRequested(obj)) {
      const bool ok = api::ValidateStageTransition(obj, after_pivot, Now());
      LogFields fields = StageLogFields(obj);
      fields.emplace_back("LCA_TRANSITION", ok ? "accepted" : "InvalidTransition");
      LogEvent(spdlog::level::info, message_id::kStageTransition, fields,
               fmt::format("transition to {} requested: {}", api::StageName(obj.spec.stage),
                           ok ? "accepted" : "InvalidTransition"));
    }
    api::RefreshStatus(obj, after_pivot);
  });

  const auto work = ActiveWork(ibu);
  std::lock_guard lock(mu_);
  if (worker_running_) {
    if (!work || *work != worker_work_) {
      spdlog::info("{} no longer wanted: cancelling it at its next safe point",
                   WorkName(worker_work_));
      worker_cancel_->Cancel();
    }
    return;
  }
  if (!work || awaiting_reboot_) return;
  if (due_) return;  // the handler asked to run again later
  StartWorker(*work, after_pivot);
}

// Called with mu_ held.
void Reconciler::StartWorker(Work work, bool after_pivot) {
  worker_running_ = true;
  worker_work_ = work;
  worker_cancel_ = std::make_shared<CancelToken>();
  auto cancel = worker_cancel_;
  worker_ = std::thread([this, work, after_pivot, cancel] {
    Outcome outcome;
    // Every record of this run carries the stage, the work and the target deployment.
    std::optional<ScopedLogFields> log_fields;
    try {
      {
        LogFields fields = StageLogFields(deps_.store.Get());
        fields.emplace_back("LCA_WORK", std::string(WorkName(work)));
        log_fields.emplace(std::move(fields));
      }
      // History: a run of a stage is recorded once; Idle's work starts from an empty history.
      deps_.store.Update([&](api::ImageBasedUpgrade& ibu) {
        if (!ibu.status) ibu.status = api::Status{};
        if (ibu.spec.stage == api::Stage::kIdle) {
          api::ResetHistory(*ibu.status);
        } else {
          api::StartStageHistory(*ibu.status, ibu.spec.stage, Now());
        }
      });
      auto it = handlers_.find(work);
      if (it == handlers_.end()) {
        outcome = Outcome::Failed("this lifecycle-agent build has no " +
                                  std::string(WorkName(work)) + " handler");
      } else {
        StageContext ctx{deps_.store, deps_.journal, deps_.runner, *cancel,
                         deps_.paths, after_pivot,   work};
        ctx.max_step_attempts = deps_.max_step_attempts;
        outcome = it->second->Run(ctx);
      }
    } catch (const std::exception& e) {
      outcome = Outcome::Failed(e.what());
    }
    // A handler that says "cancelled" when nobody asked would be started again at once,
    // forever: treat it as the bug it is.
    if (outcome.kind == OutcomeKind::kCancelled && !cancel->Cancelled()) {
      outcome = Outcome::Failed("internal error: " + std::string(WorkName(work)) +
                                " returned Cancelled but nothing cancelled it");
    }
    {
      std::lock_guard lock(mu_);
      worker_outcome_ = std::move(outcome);
    }
    cv_.notify_all();
  });
}

}  // namespace lca
