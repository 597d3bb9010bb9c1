#pragma once
// `lcactl wait --for=condition=NAME[=VALUE]`: when the condition is met, and when waiting on is
// pointless because the stage it belongs to has failed (kubectl would wait for the timeout;
// an operator waiting two hours for PrepCompleted after Prep failed learns nothing from that).
#include <string>

#include "common/json_yaml.hpp"

namespace lca::cli {

struct WaitFor {
  std::string type;           // "PrepCompleted"
  std::string want = "True";  // the status wanted, compared case-insensitively
};

// "condition=PrepCompleted", "condition=UpgradeInProgress=False"; throws lca::Error kInvalid.
WaitFor ParseWaitFor(const std::string& text);

enum class WaitVerdict { kWaiting, kMet, kFailed };

struct WaitCheck {
  WaitVerdict verdict = WaitVerdict::kWaiting;
  // kFailed, from the newest failed condition: "Prep failed: PrepCompleted is False (Failed):
  // <message>".
  std::string failure;
};

// Judges one object (JSON as the API serves it). A failure counts only when the agent has
// acted on the newest spec (status.observedGeneration and the failed condition's
// observedGeneration equal metadata.generation), so an old failure seen right after a new
// patch does not end the wait. Only a wait for True can fail early: the conditions of the
// stage the wanted condition belongs to (Prep/Upgrade/Rollback InProgress and Completed, or
// Idle) that are False with reason Failed, AbortFailed, FinalizeFailed or InvalidTransition.
WaitCheck CheckWait(const Json& obj, const WaitFor& w);

}  // namespace lca::cli
