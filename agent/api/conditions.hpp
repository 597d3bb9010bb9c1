#pragma once
// Condition vocabulary and composite setters of the Go operator (controllers/utils/conditions.go),
// with its write rule: a condition that changes status, or any Idle write, moves to the end of
// the list so "the last condition" (what `get ibu` prints as STATE/DETAILS) is the newest.
#include <string_view>

#include "agent/api/ibu.hpp"

namespace lca::api {

namespace ctype {
inline constexpr std::string_view kIdle = "Idle";
inline constexpr std::string_view kPrepInProgress = "PrepInProgress";
inline constexpr std::string_view kPrepCompleted = "PrepCompleted";
inline constexpr std::string_view kUpgradeInProgress = "UpgradeInProgress";
inline constexpr std::string_view kUpgradeCompleted = "UpgradeCompleted";
inline constexpr std::string_view kRollbackInProgress = "RollbackInProgress";
inline constexpr std::string_view kRollbackCompleted = "RollbackCompleted";
}  // namespace ctype

namespace reason {
inline constexpr std::string_view kIdle = "Idle";
inline constexpr std::string_view kInProgress = "InProgress";
inline constexpr std::string_view kCompleted = "Completed";
inline constexpr std::string_view kFailed = "Failed";
inline constexpr std::string_view kAborting = "Aborting";
inline constexpr std::string_view kAbortCompleted = "AbortCompleted";
inline constexpr std::string_view kAbortFailed = "AbortFailed";
inline constexpr std::string_view kFinalizing = "Finalizing";
inline constexpr std::string_view kFinalizeCompleted = "FinalizeCompleted";
inline constexpr std::string_view kFinalizeFailed = "FinalizeFailed";
inline constexpr std::string_view kInvalidTransition = "InvalidTransition";
inline constexpr std::string_view kBlocked = "Blocked";
}  // namespace reason

namespace msg {
inline constexpr std::string_view kInProgress = "In progress";
inline constexpr std::string_view kFinalizing = "Finalizing";
inline constexpr std::string_view kAborting = "Aborting";
inline constexpr std::string_view kPrepCompleted = "Prep completed";
inline constexpr std::string_view kPrepFailed = "Prep failed";
inline constexpr std::string_view kUpgradeCompleted = "Upgrade completed";
inline constexpr std::string_view kUpgradeFailed = "Upgrade failed";
inline constexpr std::string_view kRollbackCompleted = "Rollback completed";
inline constexpr std::string_view kRollbackFailed = "Rollback failed";
inline constexpr std::string_view kRollbackRequested = "Rollback requested";
inline constexpr std::string_view kIdle = "Idle";
}  // namespace msg

inline constexpr std::string_view kTrue = "True";
inline constexpr std::string_view kFalse = "False";

std::string_view InProgressType(Stage s);
std::string_view CompletedType(Stage s);

const Condition* FindCondition(const Status& st, std::string_view type);
void RemoveCondition(Status& st, std::string_view type);

// Writes conditions for one status update: every write stamps `generation` as the
// condition's observedGeneration and `now` as lastTransitionTime when the status changes.
class ConditionWriter {
 public:
  ConditionWriter(Status& st, int64_t generation, TimePoint now)
      : st_(st), generation_(generation), now_(now) {}

  // §2.7: meta.SetStatusCondition plus the move-to-end rule.
  void Set(std::string_view type, std::string_view status, std::string_view reason,
           std::string_view message);

  void PrepInProgress(std::string_view message);
  void PrepFailed(std::string_view message);
  void PrepCompleted(std::string_view message);
  void UpgradeInProgress(std::string_view message);
  void UpgradeFailed(std::string_view message);
  void UpgradeCompleted();
  void RollbackRequested();
  void RollbackInProgress(std::string_view message);
  void RollbackFailed(std::string_view message);
  void RollbackCompleted();
  void IdleInProgress(std::string_view reason, std::string_view message);
  // All conditions but Idle removed; Idle True/Idle/"Idle".
  void Reset();
  // On the in-progress type of `desired`: False/InvalidTransition/message.
  void InvalidTransition(Stage desired, std::string_view message);
  void Blocked(Stage desired, std::string_view message);

 private:
  Status& st_;
  int64_t generation_;
  TimePoint now_;
};

}  // namespace lca::api
