#include "agent/cli/wait_condition.hpp"

#include <algorithm>
#include <array>

#include "agent/api/conditions.hpp"
#include "common/error.hpp"

namespace lca::cli {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool FailedReason(const std::string& reason) {
  namespace r = api::reason;
  return reason == r::kFailed || reason == r::kAbortFailed || reason == r::kFinalizeFailed ||
         reason == r::kInvalidTransition;
}

// The conditions that tell how the stage of `type` went: "Prep" for PrepCompleted.
std::vector<std::string> StageConditions(const std::string& type) {
  for (const char* stage : {"Prep", "Upgrade", "Rollback"}) {
    const std::string s = stage;
    if (type == s + "Completed" || type == s + "InProgress") {
      return {s + "InProgress", s + "Completed"};
    }
  }
  if (type == "Idle") return {"Idle"};
  return {};
}

std::string StageOf(const std::string& type) {
  for (const char* suffix : {"InProgress", "Completed"}) {
    const std::string sfx = suffix;
    if (type.size() > sfx.size() && type.ends_with(sfx))
      return type.substr(0, type.size() - sfx.size());
  }
  return type;
}

}  // namespace

WaitFor ParseWaitFor(const std::string& text) {
  const std::string prefix = "condition=";
  if (!text.starts_with(prefix)) {
    throw Error(Errc::kInvalid,
                "--for must be condition=NAME[=VALUE] (e.g. --for=condition=PrepCompleted)");
  }
  WaitFor w;
  w.type = text.substr(prefix.size());
  if (auto eq = w.type.find('='); eq != std::string::npos) {
    w.want = w.type.substr(eq + 1);
    w.type.resize(eq);
  }
  if (w.type.empty()) throw Error(Errc::kInvalid, "--for=condition= needs a condition name");
  return w;
}

WaitCheck CheckWait(const Json& obj, const WaitFor& w) {
  const Json status = obj.value("status", Json::object());
  const Json conditions = status.value("conditions", Json::array());
  for (const auto& c : conditions) {
    if (c.value("type", "") == w.type && Lower(c.value("status", "")) == Lower(w.want)) {
      return {WaitVerdict::kMet, ""};
    }
  }
  if (Lower(w.want) != "true") return {};
  const Json meta = obj.value("metadata", Json::object());
  const int64_t generation = meta.value("generation", int64_t{0});
  if (status.value("observedGeneration", int64_t{-1}) != generation) return {};
  const auto relevant = StageConditions(w.type);
  // Newest first: a changed condition moves to the end, and the newest says the most.
  for (auto it = conditions.rbegin(); it != conditions.rend(); ++it) {
    const Json& c = *it;
    const std::string type = c.value("type", ""), reason = c.value("reason", "");
    if (std::find(relevant.begin(), relevant.end(), type) == relevant.end()) continue;
    if (c.value("status", "") != api::kFalse || !FailedReason(reason)) continue;
    if (c.value("observedGeneration", int64_t{-1}) != generation) continue;
    return {WaitVerdict::kFailed, StageOf(w.type) + " failed: " + type + " is False (" + reason +
                                      "): " + c.value("message", "")};
  }
  return {};
}

}  // namespace lca::cli
