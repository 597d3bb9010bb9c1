#pragma once
// Idle's cleanup (§7.2): a list of independent steps that all run even when one fails; the
// errors are collected and joined, as the Go operator reports them. Each step is journaled as
// "<abort|finalize>.<name>" and runs on every run of the cleanup (a rerun after
// manual-cleanup-done checks everything again).
//
// The steps this build has are the rows of kCleanupSteps (cleanup.cpp): stateroots, workspace,
// annotations. A new cleanup step is a row there (a function of CleanupRun&).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/controller/stage_handler.hpp"

namespace lca {

class CleanupStep {
 public:
  virtual ~CleanupStep() = default;
  // Stable name, journaled as "<abort|finalize>.<name>".
  virtual std::string name() const = 0;
  // Throws lca::Error on failure.
  virtual void Run(StageContext& ctx) = 0;
};

class Cleanup {
 public:
  explicit Cleanup(std::vector<std::unique_ptr<CleanupStep>> steps) : steps_(std::move(steps)) {}
  // Runs every step; returns "" or the errors joined by spaces.
  std::string RunAll(StageContext& ctx, const std::string& journal_prefix);
  // "<journal_prefix>.<name>" of every step, in order.
  std::vector<std::string> StepNames(const std::string& journal_prefix) const;

 private:
  std::vector<std::unique_ptr<CleanupStep>> steps_;
};

struct CleanupOptions {
  // Prep's scratch dir; empty = <sysroot>/ostree/lca-prep.
  std::filesystem::path work_dir;
};

// What a cleanup row works with.
struct CleanupRun {
  StageContext& ctx;
  const CleanupOptions& opts;
};

// The rows of kCleanupSteps as steps, in the order they run.
std::vector<std::unique_ptr<CleanupStep>> DefaultCleanupSteps(CleanupOptions opts = {});

// Removes the stateroots this upgrade made or left (stateroot_cleanup.cpp).
void RemoveUpgradeStateroots(CleanupRun& c);

}  // namespace lca
