#pragma once
// The stage rules of the Go reconciler (controllers/ibu_controller.go), as pure functions of the
// object and one host fact, afterPivot (the target stateroot is the booted one), so every row
// of the transition table is a unit test.
#include <optional>
#include <vector>

#include "agent/api/ibu.hpp"

namespace lca::api {

// §2.1
bool IsStageInProgress(const Status& st, Stage s);
bool IsStageCompleted(const Status& st, Stage s);
bool IsStageFailed(const Status& st, Stage s);
// First in-progress stage in the order Idle, Prep, Upgrade, Rollback.
std::optional<Stage> InProgressStage(const Status& st);

// §2.2. What a patch may ask for next while the object accepts patches: while it is sealed
// for the pivot reboot it accepts none, and ObjectStore serves an empty list instead.
std::vector<Stage> ValidNextStages(const ImageBasedUpgrade& ibu, bool after_pivot);

// §2.3
bool IsTransitionRequested(const ImageBasedUpgrade& ibu);

// §2.4: for a requested transition, either applies the target's start conditions and returns
// true, or sets InvalidTransition with the reference message and returns false. Always
// recomputes status.validNextStages afterwards.
bool ValidateStageTransition(ImageBasedUpgrade& ibu, bool after_pivot, TimePoint now);

// The message an invalid request to `desired` gets (§2.4 "Else").
std::string InvalidTransitionMessage(const ImageBasedUpgrade& ibu, Stage desired, bool after_pivot);

// §7.3 plus the status parts of a fresh start: conditions reset to Idle True,
// rollbackAvailabilityExpiration cleared.
void ResetToIdle(ImageBasedUpgrade& ibu, TimePoint now);

// Recomputes status.validNextStages and stamps status.observedGeneration (every status write
// does both, §1.3).
void RefreshStatus(ImageBasedUpgrade& ibu, bool after_pivot);

}  // namespace lca::api
