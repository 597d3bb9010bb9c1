#pragma once
// Every journaled step table of the agent and of recovery, by name, in run order: what the
// crash matrix kills at and what docs/architecture.md lists ("Steps"). Generated from the
// tables themselves, so a new row shows up here without anyone copying its name.
#include <string>
#include <vector>

namespace lca {

struct StepTableInfo {
  std::string table;             // "Prep", "Upgrade (pre-pivot)", ..., "recovery backup"
  std::string failpoint_prefix;  // "step." or "recovery.backup." / "recovery.restore."
  std::vector<std::string> steps;
};

std::vector<StepTableInfo> AllStepTables();

}  // namespace lca
