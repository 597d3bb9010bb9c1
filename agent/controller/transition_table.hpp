#pragma once
// Every (work, outcome) pair the agent knows, and what it writes into status. A pair missing
// from the table is a bug in the agent, reported as such, never silently ignored.
#include <optional>
#include <span>
#include <string_view>

#include "agent/api/ibu.hpp"
#include "agent/controller/stage_handler.hpp"

namespace lca {

enum class Effect {
  kNone,      // status stays as it is (cancelled, rebooting)
  kRunAgain,  // run the same work again later (requeue)
  kPrepCompleted,
  kPrepFailed,
  kUpgradeCompleted,
  kUpgradeFailed,
  kRollbackCompleted,
  kRollbackFailed,
  kResetToIdle,  // abort/finalize done: Idle True, history and expiration cleared
  kAbortFailed,
  kFinalizeFailed,
};

struct TransitionRow {
  Work work;
  OutcomeKind outcome;
  Effect effect;
};

std::span<const TransitionRow> TransitionTable();
std::optional<Effect> LookupTransition(Work work, OutcomeKind outcome);
std::string_view EffectName(Effect e);

// Applies an effect to the object. `message` is the handler's message (failure text).
void ApplyEffect(api::ImageBasedUpgrade& ibu, Effect effect, const std::string& message,
                 TimePoint now);

// The message AbortFailed/FinalizeFailed carry: the cleanup errors and what to do next.
std::string ManualCleanupMessage(const std::string& errors);

}  // namespace lca
