#pragma once
// Idle's cleanup (§7.2): a list of independent steps that all run even when one fails; the
// errors are collected and joined, as the Go operator reports them.
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

 private:
  std::vector<std::unique_ptr<CleanupStep>> steps_;
};

// Removes <state-dir>/workspace (the seed pull secret, pre-cache status, scratch files).
class WorkspaceCleanup final : public CleanupStep {
 public:
  std::string name() const override { return "workspace"; }
  void Run(StageContext& ctx) override;
};

// Removes the annotations Prep wrote (extra-manifest validation warnings).
class AnnotationCleanup final : public CleanupStep {
 public:
  std::string name() const override { return "annotations"; }
  void Run(StageContext& ctx) override;
};

// The steps this build has, in the order they run.
std::vector<std::unique_ptr<CleanupStep>> DefaultCleanupSteps();

}  // namespace lca
