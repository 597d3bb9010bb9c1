#pragma once
// Idle's two kinds of work (§7.1): abort (undo an unfinished upgrade) and finalize (drop the
// stateroot no longer needed after an upgrade or a rollback). Both are cleanup; they differ
// in the failure reason they report and in what the cleanup steps remove.
#include <memory>
#include <string>
#include <vector>

#include "agent/controller/handlers/cleanup.hpp"
#include "agent/controller/stage_handler.hpp"

namespace lca {

class AbortHandler final : public StageHandler {
 public:
  explicit AbortHandler(std::shared_ptr<Cleanup> cleanup) : cleanup_(std::move(cleanup)) {}
  Work work() const override { return Work::kAbort; }
  Outcome Run(StageContext& ctx) override;
  // The journaled names of the default cleanup steps: "abort.<row of kCleanupSteps>".
  static std::vector<std::string> StepNames();

 private:
  std::shared_ptr<Cleanup> cleanup_;
};

class FinalizeHandler final : public StageHandler {
 public:
  explicit FinalizeHandler(std::shared_ptr<Cleanup> cleanup) : cleanup_(std::move(cleanup)) {}
  Work work() const override { return Work::kFinalize; }
  Outcome Run(StageContext& ctx) override;
  // "finalize.<row of kCleanupSteps>".
  static std::vector<std::string> StepNames();

 private:
  std::shared_ptr<Cleanup> cleanup_;
};

}  // namespace lca
