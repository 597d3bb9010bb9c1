#pragma once
// One runner for every journaled host step: the agent's stages (agent/controller/handlers/*)
// and recovery's backup and restore. A unit of work is a table of steps, each
// {name, progress weight, run, undo}; the runner, for each step in order:
//   * skips it when the journal says it is done (a resumed run), unless the policy reruns all;
//   * stops before it when the work was cancelled ("cancelled before <name>", kCancelled);
//   * refuses it when it was started max_attempts times without finishing: a step that kills
//     the process every time fails the work cleanly instead of looping through restarts;
//   * journals it as started (atomic write, fsync) before it runs, then fires the failpoint
//     (the agent's journal fires "step.<name>" itself; recovery's policy names
//     "recovery.backup.<name>" / "recovery.restore.<name>"): where the crash matrix kills the
//     process; runs it, journals it done, and logs its duration (journald LCA_STEP=<name>);
//   * on a failure (not a cancellation), runs the undo of the failed step and of every step
//     before it that is done, in reverse order, then rethrows.
// Persisted names are the table's `name` strings: never renumber or rename them, a journal
// written by an older build must still resume.
#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/step_journal.hpp"

namespace lca {

template <class Ctx>
struct Step {
  const char* name;              // persisted in the journal; the failpoint's suffix
  int weight = 1;                // share of the work's progress
  void (*run)(Ctx&) = nullptr;   // must be safe to run again after a kill
  void (*undo)(Ctx&) = nullptr;  // optional; must tolerate a half-done or undone step
};

// The default for maxStepAttempts (lifecycle-agent config) and recovery's runs.
inline constexpr int kDefaultMaxStepAttempts = 3;

struct StepPolicy {
  // "" when the journal fires the failpoint itself (the agent's journal.json: "step.<name>").
  std::string failpoint_prefix;
  // "" logs "step <name> done in N ms"; "backup" logs "backup: <name>" before and
  // "backup: <name> done in N ms" after.
  std::string log_label;
  bool skip_done = true;        // false: every step runs on every run (cleanup, backup)
  bool name_in_errors = false;  // errors read "<name>: <cause>"
  int max_attempts = kDefaultMaxStepAttempts;
  // Appended to the attempts error: what the operator does next.
  std::string give_up_hint;
  std::function<bool()> cancelled;
  // After each step that finished: its name, its duration, the share of the table's weight
  // done so far (0..1). For metrics.
  std::function<void(const std::string&, std::chrono::milliseconds, double)> on_done;
};

// A step built at run time (a table's row bound to its context, or a cleanup step object).
struct StepFn {
  std::string name;
  int weight = 1;
  std::function<void()> run;
  std::function<void()> undo;  // may be empty
};

class StepRunner {
 public:
  StepRunner(StepJournal& journal, StepPolicy policy)
      : journal_(journal), policy_(std::move(policy)) {}

  // Runs the table; the first failure undoes (see above) and is rethrown.
  template <class Ctx>
  void Run(std::span<const Step<Ctx>> steps, Ctx& ctx) {
    RunErased(Erase(steps, ctx), false);
  }
  void Run(const std::vector<StepFn>& steps) { RunErased(steps, false); }
  // Runs every step even when one fails (no undo); returns "" or the errors joined by
  // spaces. A cancellation is still thrown.
  template <class Ctx>
  std::string RunAll(std::span<const Step<Ctx>> steps, Ctx& ctx) {
    return RunErased(Erase(steps, ctx), true);
  }
  std::string RunAll(const std::vector<StepFn>& steps) { return RunErased(steps, true); }
  // Undoes the steps the journal has done, last first (a failure outside any step).
  template <class Ctx>
  void UndoDone(std::span<const Step<Ctx>> steps, Ctx& ctx) {
    const auto erased = Erase(steps, ctx);
    UndoFrom(erased, erased.size());
  }

  StepJournal& journal() { return journal_; }

 private:
  using Erased = StepFn;

  template <class Ctx>
  static std::vector<Erased> Erase(std::span<const Step<Ctx>> steps, Ctx& ctx) {
    std::vector<Erased> out;
    out.reserve(steps.size());
    for (const auto& s : steps) {
      Erased e{s.name, s.weight, [&ctx, run = s.run] { run(ctx); }, nullptr};
      if (s.undo != nullptr) e.undo = [&ctx, undo = s.undo] { undo(ctx); };
      out.push_back(std::move(e));
    }
    return out;
  }

  std::string RunErased(const std::vector<Erased>& steps, bool keep_going);
  void RunOne(const Erased& step);
  void CheckAttempts(const std::string& name) const;
  void RecordFailure(const std::string& name, const std::exception& e);
  // Undoes steps[failed] (when it has an undo) and every done step before it, last first.
  void UndoFrom(const std::vector<Erased>& steps, size_t failed);

  StepJournal& journal_;
  StepPolicy policy_;
};

// The step names of a table, in order (the crash matrix, the docs check).
template <class Ctx>
std::vector<std::string> StepNames(std::span<const Step<Ctx>> steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.emplace_back(s.name);
  return out;
}

}  // namespace lca
