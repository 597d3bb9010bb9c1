#include "agent/controller/transition_table.hpp"

#include <array>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/api/stage_rules.hpp"

namespace lca {
namespace {

using enum Work;
using enum OutcomeKind;
using enum Effect;

// clang-format off
constexpr std::array kTable = {
  //            work       outcome      effect
  TransitionRow{kPrep,     kCompleted,  kPrepCompleted},
  TransitionRow{kPrep,     kFailed,     kPrepFailed},
  TransitionRow{kPrep,     kRequeue,    kRunAgain},
  // Abort was requested while Prep ran: the Idle condition already says Aborting.
  TransitionRow{kPrep,     kCancelled,  kNone},
  TransitionRow{kUpgrade,  kCompleted,  kUpgradeCompleted},
  TransitionRow{kUpgrade,  kFailed,     kUpgradeFailed},
  TransitionRow{kUpgrade,  kRequeue,    kRunAgain},
  TransitionRow{kUpgrade,  kCancelled,  kNone},
  // The pivot: the next boot's agent picks the object up from the new stateroot.
  TransitionRow{kUpgrade,  kRebooting,  kNone},
  TransitionRow{kRollback, kCompleted,  kRollbackCompleted},
  TransitionRow{kRollback, kFailed,     kRollbackFailed},
  TransitionRow{kRollback, kRequeue,    kRunAgain},
  TransitionRow{kRollback, kRebooting,  kNone},
  TransitionRow{kAbort,    kCompleted,  kResetToIdle},
  TransitionRow{kAbort,    kFailed,     kAbortFailed},
  TransitionRow{kAbort,    kRequeue,    kRunAgain},
  TransitionRow{kFinalize, kCompleted,  kResetToIdle},
  TransitionRow{kFinalize, kFailed,     kFinalizeFailed},
  // Finalize waits for the system to settle before it removes anything.
  TransitionRow{kFinalize, kRequeue,    kRunAgain},
};
// clang-format on

}  // namespace

std::span<const TransitionRow> TransitionTable() { return kTable; }

std::optional<Effect> LookupTransition(Work work, OutcomeKind outcome) {
  for (const auto& row : kTable) {
    if (row.work == work && row.outcome == outcome) return row.effect;
  }
  return std::nullopt;
}

std::string_view EffectName(Effect e) {
  switch (e) {
    case kNone:
      return "None";
    case kRunAgain:
      return "RunAgain";
    case kPrepCompleted:
      return "PrepCompleted";
    case kPrepFailed:
      return "PrepFailed";
    case kUpgradeCompleted:
      return "UpgradeCompleted";
    case kUpgradeFailed:
      return "UpgradeFailed";
    case kRollbackCompleted:
      return "RollbackCompleted";
    case kRollbackFailed:
      return "RollbackFailed";
    case kResetToIdle:
      return "ResetToIdle";
    case kAbortFailed:
      return "AbortFailed";
    case kFinalizeFailed:
      return "FinalizeFailed";
  }
  return "Unknown";
}

std::string ManualCleanupMessage(const std::string& errors) {
  return errors +
         " Perform cleanup manually then add 'lca.openshift.io/manual-cleanup-done' annotation to "
         "ibu CR to transition back to Idle";
}

void ApplyEffect(api::ImageBasedUpgrade& ibu, Effect effect, const std::string& message,
                 TimePoint now) {
  if (!ibu.status) ibu.status = api::Status{};
  api::Status& st = *ibu.status;
  api::ConditionWriter w(st, ibu.metadata.generation, now);
  switch (effect) {
    case kNone:
    case kRunAgain:
      return;
    case kPrepCompleted:
      w.PrepCompleted(message.empty() ? std::string(api::msg::kPrepCompleted) : message);
      api::StopStageHistory(st, api::Stage::kPrep, now);
      return;
    case kPrepFailed:
      w.PrepFailed(message);
      return;
    case kUpgradeCompleted:
      w.UpgradeCompleted();
      api::StopStageHistory(st, api::Stage::kUpgrade, now);
      return;
    case kUpgradeFailed:
      w.UpgradeFailed(message);
      return;
    case kRollbackCompleted:
      w.RollbackCompleted();
      api::StopStageHistory(st, api::Stage::kRollback, now);
      return;
    case kRollbackFailed:
      w.RollbackFailed(message);
      return;
    case kResetToIdle:
      api::ResetToIdle(ibu, now);
      api::ResetHistory(st);
      return;
    case kAbortFailed:
      w.IdleInProgress(api::reason::kAbortFailed, ManualCleanupMessage(message));
      return;
    case kFinalizeFailed:
      w.IdleInProgress(api::reason::kFinalizeFailed, ManualCleanupMessage(message));
      return;
  }
}

}  // namespace lca
