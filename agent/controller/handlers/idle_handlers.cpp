#include "agent/controller/handlers/idle_handlers.hpp"

namespace lca {

std::vector<std::string> AbortHandler::StepNames() {
  return Cleanup(DefaultCleanupSteps()).StepNames("abort");
}

std::vector<std::string> FinalizeHandler::StepNames() {
  return Cleanup(DefaultCleanupSteps()).StepNames("finalize");
}

Outcome AbortHandler::Run(StageContext& ctx) {
  const std::string errors = cleanup_->RunAll(ctx, "abort");
  return errors.empty() ? Outcome::Completed() : Outcome::Failed(errors);
}

// The Go operator runs a cluster health check before finalizing; on a node-local agent the
// health that matters (the new release booted and confirmed) is what UpgradeCompleted records.
Outcome FinalizeHandler::Run(StageContext& ctx) {
  const std::string errors = cleanup_->RunAll(ctx, "finalize");
  return errors.empty() ? Outcome::Completed() : Outcome::Failed(errors);
}

}  // namespace lca
