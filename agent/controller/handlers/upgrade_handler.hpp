#pragma once
// Upgrade (reference §5): before the pivot (the old stateroot is booted) run the pre-pivot
// hooks, export the extra manifests, carry the agent, hand the object to the new stateroot, pin
// the old deployment, make the new one the default, leave the "Uncontrolled rollback" record
// behind and reboot. After the pivot (the new stateroot is booted) run the post-pivot hooks and
// complete, or roll back automatically when they fail.
#include <string>
#include <vector>

#include "agent/controller/handlers/pivot_options.hpp"
#include "agent/controller/stage_handler.hpp"
#include "common/state_layout.hpp"

namespace lca {

class UpgradeHandler final : public StageHandler {
 public:
  explicit UpgradeHandler(PivotOptions opts) : opts_(std::move(opts)) {}
  Work work() const override { return Work::kUpgrade; }
  Outcome Run(StageContext& ctx) override;

  // The message the old stateroot shows if it is booted again without lca rolling back.
  static constexpr const char* kUncontrolledRollback = "Uncontrolled rollback";
  // <state-dir>/pinned.json: the deployment this agent pinned, so cleanup unpins only that.
  static constexpr const char* kPinnedFile = state_layout::kPinned;

  // The persisted step names of the two tables, in order (crash matrix, docs check). A new
  // step before the pivot is a row in kPrePivotSteps (upgrade_handler.cpp), after it a row in
  // kPostPivotSteps.
  static std::vector<std::string> PrePivotStepNames();
  static std::vector<std::string> PostPivotStepNames();

 private:
  Outcome PrePivot(StageContext& ctx);
  Outcome PostPivot(StageContext& ctx);
  PivotOptions opts_;
};

// Manual Rollback (reference §6.1): from the new stateroot, make the old deployment the default,
// hand it the object and reboot; once the old stateroot is booted, Rollback is complete.
class RollbackHandler final : public StageHandler {
 public:
  explicit RollbackHandler(PivotOptions opts) : opts_(std::move(opts)) {}
  Work work() const override { return Work::kRollback; }
  Outcome Run(StageContext& ctx) override;

  // kRollbackSteps (rollback_handler.cpp), in order.
  static std::vector<std::string> StepNames();

 private:
  PivotOptions opts_;
};

}  // namespace lca
