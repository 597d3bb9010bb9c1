#pragma once
// status.history bookkeeping (controllers/utils/history.go): one entry per non-Idle stage run,
// each with its phases; starting twice never duplicates, stopping the unknown is a no-op.
#include <string_view>

#include "agent/api/ibu.hpp"

namespace lca::api {

namespace phase {
inline constexpr std::string_view kStateroot = "Stateroot";
inline constexpr std::string_view kPrecache = "Precache";
inline constexpr std::string_view kPrePivot = "PrePivot";
inline constexpr std::string_view kPostPivot = "PostPivot";
}  // namespace phase

// Appends {stage, startTime=now} unless an entry for `stage` with a startTime exists.
// Returns true when it changed anything.
bool StartStageHistory(Status& st, Stage stage, TimePoint now);
// Sets completionTime of the stage entry if unset.
bool StopStageHistory(Status& st, Stage stage, TimePoint now);
bool StartPhaseHistory(Status& st, Stage stage, std::string_view phase, TimePoint now);
bool StopPhaseHistory(Status& st, Stage stage, std::string_view phase, TimePoint now);
// Idle's handler empties history on every call.
bool ResetHistory(Status& st);

}  // namespace lca::api
