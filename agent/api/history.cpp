#include "agent/api/history.hpp"

namespace lca::api {
namespace {

StageHistory* FindStage(Status& st, Stage stage) {
  for (auto& h : st.history) {
    if (h.stage == stage) return &h;
  }
  return nullptr;
}

}  // namespace

bool StartStageHistory(Status& st, Stage stage, TimePoint now) {
  if (StageHistory* h = FindStage(st, stage); h != nullptr && h->start_time) return false;
  st.history.push_back(StageHistory{stage, now, std::nullopt, {}});
  return true;
}

bool StopStageHistory(Status& st, Stage stage, TimePoint now) {
  StageHistory* h = FindStage(st, stage);
  if (h == nullptr || h->completion_time) return false;
  h->completion_time = now;
  return true;
}

bool StartPhaseHistory(Status& st, Stage stage, std::string_view phase_name, TimePoint now) {
  StageHistory* h = FindStage(st, stage);
  if (h == nullptr) return false;
  for (const auto& p : h->phases) {
    if (p.phase == phase_name && p.start_time) return false;
  }
  h->phases.push_back(PhaseHistory{std::string(phase_name), now, std::nullopt});
  return true;
}

bool StopPhaseHistory(Status& st, Stage stage, std::string_view phase_name, TimePoint now) {
  StageHistory* h = FindStage(st, stage);
  if (h == nullptr) return false;
  for (auto& p : h->phases) {
    if (p.phase == phase_name && !p.completion_time) {
      p.completion_time = now;
      return true;
    }
  }
  return false;
}

bool ResetHistory(Status& st) {
  if (st.history.empty()) return false;
  st.history.clear();
  return true;
}

}  // namespace lca::api
