#include "agent/controller/step_tables.hpp"

#include "agent/controller/handlers/idle_handlers.hpp"
#include "agent/controller/handlers/prep_handler.hpp"
#include "agent/controller/handlers/upgrade_handler.hpp"
#include "recovery/backup.hpp"
#include "recovery/restore.hpp"

namespace lca {

std::vector<StepTableInfo> AllStepTables() {
  return {
      {"Prep", "step.", PrepHandler::StepNames()},
      {"Upgrade (pre-pivot)", "step.", UpgradeHandler::PrePivotStepNames()},
      {"Upgrade (post-pivot)", "step.", UpgradeHandler::PostPivotStepNames()},
      {"Rollback", "step.", RollbackHandler::StepNames()},
      {"Finalize", "step.", FinalizeHandler::StepNames()},
      {"Abort", "step.", AbortHandler::StepNames()},
      {"recovery backup", "recovery.backup.", recovery::BackupStepNames()},
      {"recovery restore", "recovery.restore.", recovery::RestoreStepNames()},
  };
}

}  // namespace lca
