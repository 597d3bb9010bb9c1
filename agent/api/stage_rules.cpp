#include "agent/api/stage_rules.hpp"

#include <algorithm>

#include "agent/api/conditions.hpp"

namespace lca::api {
namespace {

bool ConditionTrue(const Status& st, std::string_view type) {
  const Condition* c = FindCondition(st, type);
  return c != nullptr && c->status == kTrue;
}

bool IdleReasonIsCleanup(std::string_view r) {
  return r == reason::kAborting || r == reason::kAbortFailed || r == reason::kFinalizing ||
         r == reason::kFinalizeFailed;
}

const Status& StatusOf(const ImageBasedUpgrade& ibu) {
  static const Status kEmpty;
  return ibu.status ? *ibu.status : kEmpty;
}

}  // namespace

bool IsStageInProgress(const Status& st, Stage s) {
  if (s == Stage::kIdle) {
    const Condition* c = FindCondition(st, ctype::kIdle);
    return c != nullptr && c->status == kFalse && IdleReasonIsCleanup(c->reason);
  }
  return ConditionTrue(st, InProgressType(s));
}

bool IsStageCompleted(const Status& st, Stage s) { return ConditionTrue(st, CompletedType(s)); }

bool IsStageFailed(const Status& st, Stage s) {
  const Condition* c = FindCondition(st, CompletedType(s));
  return c != nullptr && c->status == kFalse;
}

std::optional<Stage> InProgressStage(const Status& st) {
  for (Stage s : kAllStages) {
    if (IsStageInProgress(st, s)) return s;
  }
  return std::nullopt;
}

std::vector<Stage> ValidNextStages(const ImageBasedUpgrade& ibu, bool after_pivot) {
  const Status& st = StatusOf(ibu);
  const auto in_progress = InProgressStage(st);
  // The order of these rules is the contract: the first that matches wins.
  if (in_progress == Stage::kIdle || in_progress == Stage::kRollback ||
      IsStageFailed(st, Stage::kRollback)) {
    return {};
  }
  if (in_progress == Stage::kPrep || IsStageFailed(st, Stage::kPrep)) return {Stage::kIdle};
  if (in_progress == Stage::kUpgrade || IsStageFailed(st, Stage::kUpgrade)) {
    return after_pivot ? std::vector<Stage>{Stage::kRollback} : std::vector<Stage>{Stage::kIdle};
  }
  if (IsStageCompleted(st, Stage::kRollback)) return {Stage::kIdle};
  if (IsStageCompleted(st, Stage::kUpgrade)) return {Stage::kIdle, Stage::kRollback};
  if (IsStageCompleted(st, Stage::kPrep)) return {Stage::kIdle, Stage::kUpgrade};
  if (IsStageCompleted(st, Stage::kIdle)) return {Stage::kPrep};
  const Condition* idle = FindCondition(st, ctype::kIdle);
  if (idle == nullptr) return {Stage::kIdle};
  if (idle->reason == reason::kBlocked) return {ibu.spec.stage};
  return {};
}

bool IsTransitionRequested(const ImageBasedUpgrade& ibu) {
  const Status& st = StatusOf(ibu);
  const Stage desired = ibu.spec.stage;
  if (desired == Stage::kIdle) {
    return !IsStageCompleted(st, Stage::kIdle) && !IsStageInProgress(st, Stage::kIdle);
  }
  // A failed stage is not re-requested by setting it again: the way out is Idle.
  return FindCondition(st, CompletedType(desired)) == nullptr && !IsStageInProgress(st, desired);
}

std::string InvalidTransitionMessage(const ImageBasedUpgrade& ibu, Stage desired,
                                     bool after_pivot) {
  const Status& st = StatusOf(ibu);
  switch (desired) {
    case Stage::kPrep:
    case Stage::kUpgrade:
      return "Previous stage not succeeded";
    case Stage::kRollback:
      return "Upgrade not started or already finalized";
    case Stage::kIdle:
      if (IsStageFailed(st, Stage::kRollback)) {
        return "Transition to Idle not allowed - Rollback failed";
      }
      if (after_pivot) {
        return IsStageInProgress(st, Stage::kRollback)
                   ? "Transition to Idle not allowed - Rollback is in progress"
                   : "Transition to Idle not allowed - Rollback first";
      }
      return "Abort or finalize not allowed";
  }
  return "Abort or finalize not allowed";
}

bool ValidateStageTransition(ImageBasedUpgrade& ibu, bool after_pivot, TimePoint now) {
  if (!ibu.status) ibu.status = Status{};
  Status& st = *ibu.status;
  ConditionWriter w(st, ibu.metadata.generation, now);
  const Stage desired = ibu.spec.stage;
  const auto valid = ValidNextStages(ibu, after_pivot);
  const bool ok = std::find(valid.begin(), valid.end(), desired) != valid.end();

  if (!ok) {
    w.InvalidTransition(desired, InvalidTransitionMessage(ibu, desired, after_pivot));
    RefreshStatus(ibu, after_pivot);
    return false;
  }

  // A stale InvalidTransition from an earlier request must not outlive a valid one.
  if (const Condition* idle = FindCondition(st, ctype::kIdle);
      idle != nullptr && idle->reason == reason::kInvalidTransition) {
    w.Set(ctype::kIdle, kFalse, reason::kInProgress, msg::kInProgress);
  }
  for (auto type :
       {ctype::kPrepInProgress, ctype::kUpgradeInProgress, ctype::kRollbackInProgress}) {
    if (const Condition* c = FindCondition(st, type);
        c != nullptr && c->reason == reason::kInvalidTransition) {
      RemoveCondition(st, type);
    }
  }

  switch (desired) {
    case Stage::kPrep:
      w.IdleInProgress(reason::kInProgress, msg::kInProgress);
      w.PrepInProgress(msg::kInProgress);
      break;
    case Stage::kUpgrade:
      w.UpgradeInProgress(msg::kInProgress);
      break;
    case Stage::kRollback:
      w.RollbackRequested();
      w.RollbackInProgress(msg::kInProgress);
      break;
    case Stage::kIdle: {
      const Condition* idle = FindCondition(st, ctype::kIdle);
      const Condition* rollback = FindCondition(st, ctype::kRollbackInProgress);
      if (IsStageCompleted(st, Stage::kUpgrade) || IsStageCompleted(st, Stage::kRollback)) {
        w.IdleInProgress(reason::kFinalizing, msg::kFinalizing);
      } else if (idle != nullptr && idle->status == kFalse && !after_pivot &&
                 (rollback == nullptr || rollback->reason == reason::kInvalidTransition)) {
        w.IdleInProgress(reason::kAborting, msg::kAborting);
      } else {
        w.Reset();
      }
      break;
    }
  }
  RefreshStatus(ibu, after_pivot);
  return true;
}

void ResetToIdle(ImageBasedUpgrade& ibu, TimePoint now) {
  if (!ibu.status) ibu.status = Status{};
  ibu.status->rollback_availability_expiration.reset();
  ConditionWriter(*ibu.status, ibu.metadata.generation, now).Reset();
}

void RefreshStatus(ImageBasedUpgrade& ibu, bool after_pivot) {
  if (!ibu.status) ibu.status = Status{};
  ibu.status->valid_next_stages = ValidNextStages(ibu, after_pivot);
  ibu.status->observed_generation = ibu.metadata.generation;
}

}  // namespace lca::api
