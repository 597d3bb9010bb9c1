#include "agent/api/conditions.hpp"

#include <algorithm>

namespace lca::api {

std::string_view InProgressType(Stage s) {
  switch (s) {
    case Stage::kIdle:
      return ctype::kIdle;
    case Stage::kPrep:
      return ctype::kPrepInProgress;
    case Stage::kUpgrade:
      return ctype::kUpgradeInProgress;
    case Stage::kRollback:
      return ctype::kRollbackInProgress;
  }
  return ctype::kIdle;
}

std::string_view CompletedType(Stage s) {
  switch (s) {
    case Stage::kIdle:
      return ctype::kIdle;
    case Stage::kPrep:
      return ctype::kPrepCompleted;
    case Stage::kUpgrade:
      return ctype::kUpgradeCompleted;
    case Stage::kRollback:
      return ctype::kRollbackCompleted;
  }
  return ctype::kIdle;
}

const Condition* FindCondition(const Status& st, std::string_view type) {
  for (const auto& c : st.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

void RemoveCondition(Status& st, std::string_view type) {
  std::erase_if(st.conditions, [&](const Condition& c) { return c.type == type; });
}

void ConditionWriter::Set(std::string_view type, std::string_view status, std::string_view reason,
                          std::string_view message) {
  auto& conds = st_.conditions;
  auto it =
      std::find_if(conds.begin(), conds.end(), [&](const Condition& c) { return c.type == type; });
  if (it == conds.end()) {
    conds.push_back(Condition{std::string(type), std::string(status), generation_, now_,
                              std::string(reason), std::string(message)});
    return;
  }
  const bool status_changed = it->status != status;
  Condition updated = *it;
  if (status_changed) updated.last_transition_time = now_;
  updated.status = std::string(status);
  updated.reason = std::string(reason);
  updated.message = std::string(message);
  updated.observed_generation = generation_;
  const bool is_last = std::next(it) == conds.end();
  if ((status_changed || type == ctype::kIdle) && !is_last) {
    conds.erase(it);
    conds.push_back(std::move(updated));
  } else {
    *it = std::move(updated);
  }
}

void ConditionWriter::PrepInProgress(std::string_view message) {
  Set(ctype::kPrepInProgress, kTrue, reason::kInProgress, message);
}

void ConditionWriter::PrepFailed(std::string_view message) {
  Set(ctype::kPrepCompleted, kFalse, reason::kFailed, msg::kPrepFailed);
  Set(ctype::kPrepInProgress, kFalse, reason::kFailed, message);
}

void ConditionWriter::PrepCompleted(std::string_view message) {
  Set(ctype::kPrepCompleted, kTrue, reason::kCompleted, message);
  Set(ctype::kPrepInProgress, kFalse, reason::kCompleted, msg::kPrepCompleted);
}

void ConditionWriter::UpgradeInProgress(std::string_view message) {
  Set(ctype::kUpgradeInProgress, kTrue, reason::kInProgress, message);
}

void ConditionWriter::UpgradeFailed(std::string_view message) {
  Set(ctype::kUpgradeCompleted, kFalse, reason::kFailed, msg::kUpgradeFailed);
  Set(ctype::kUpgradeInProgress, kFalse, reason::kFailed, message);
}

void ConditionWriter::UpgradeCompleted() {
  Set(ctype::kUpgradeCompleted, kTrue, reason::kCompleted, msg::kUpgradeCompleted);
  Set(ctype::kUpgradeInProgress, kFalse, reason::kCompleted, msg::kUpgradeCompleted);
}

void ConditionWriter::RollbackRequested() {
  Set(ctype::kUpgradeCompleted, kFalse, reason::kFailed, msg::kRollbackRequested);
  Set(ctype::kUpgradeInProgress, kFalse, reason::kFailed, msg::kRollbackRequested);
}

void ConditionWriter::RollbackInProgress(std::string_view message) {
  Set(ctype::kRollbackInProgress, kTrue, reason::kInProgress, message);
}

void ConditionWriter::RollbackFailed(std::string_view message) {
  Set(ctype::kRollbackCompleted, kFalse, reason::kFailed, msg::kRollbackFailed);
  Set(ctype::kRollbackInProgress, kFalse, reason::kFailed, message);
}

void ConditionWriter::RollbackCompleted() {
  Set(ctype::kRollbackCompleted, kTrue, reason::kCompleted, msg::kRollbackCompleted);
  Set(ctype::kRollbackInProgress, kFalse, reason::kCompleted, msg::kRollbackCompleted);
}

void ConditionWriter::IdleInProgress(std::string_view reason_, std::string_view message) {
  Set(ctype::kIdle, kFalse, reason_, message);
}

void ConditionWriter::Reset() {
  std::erase_if(st_.conditions, [](const Condition& c) { return c.type != ctype::kIdle; });
  Set(ctype::kIdle, kTrue, reason::kIdle, msg::kIdle);
}

void ConditionWriter::InvalidTransition(Stage desired, std::string_view message) {
  Set(InProgressType(desired), kFalse, reason::kInvalidTransition, message);
}

void ConditionWriter::Blocked(Stage desired, std::string_view message) {
  Set(InProgressType(desired), kFalse, reason::kBlocked, message);
}

}  // namespace lca::api
