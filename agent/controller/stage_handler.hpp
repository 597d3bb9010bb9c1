#pragma once
// What a stage handler is given and what it returns. One class per unit of work (Prep,
// Upgrade, Rollback, Abort, Finalize); the reconciler runs it on a worker thread and feeds its
// Outcome through the transition table.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "agent/api/ibu.hpp"
#include "common/state_layout.hpp"
#include "common/step_runner.hpp"

namespace lca {

class ObjectStore;
class StepJournal;
class ProcessRunner;
class HostView;

// The work a handler does. Persisted names (journal, logs) are the strings of WorkName.
enum class Work { kPrep, kUpgrade, kRollback, kAbort, kFinalize };
std::string_view WorkName(Work w);

enum class OutcomeKind {
  kCompleted,  // the work finished
  kFailed,     // the work failed; message says why
  kRequeue,    // not finished: run the handler again after `requeue_after`
  kCancelled,  // stopped at a safe point because another transition was requested
  kRebooting,  // a reboot was requested; nothing more to do in this boot
};
std::string_view OutcomeName(OutcomeKind k);

struct Outcome {
  OutcomeKind kind = OutcomeKind::kCompleted;
  std::string message;
  std::chrono::seconds requeue_after{0};

  static Outcome Completed(std::string msg = {}) {
    return {OutcomeKind::kCompleted, std::move(msg), {}};
  }
  static Outcome Failed(std::string msg) { return {OutcomeKind::kFailed, std::move(msg), {}}; }
  static Outcome Requeue(std::chrono::seconds after, std::string msg = {}) {
    return {OutcomeKind::kRequeue, std::move(msg), after};
  }
  static Outcome Cancelled() { return {OutcomeKind::kCancelled, {}, {}}; }
  static Outcome Rebooting() { return {OutcomeKind::kRebooting, {}, {}}; }
};

// Set by the reconciler when the user asked for something else (abort); handlers check it
// at safe points and never in the middle of a host mutation.
class CancelToken {
 public:
  void Cancel();
  bool Cancelled() const { return cancelled_.load(); }
  // Sleeps up to `d`; returns true early if cancelled.
  bool SleepFor(std::chrono::milliseconds d);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

struct AgentPaths {
  std::filesystem::path state_dir;        // /var/lib/lca
  std::filesystem::path sysroot;          // /
  std::filesystem::path config_dir;       // /etc/lca
  std::filesystem::path containers_root;  // /var/lib/containers/storage
  // The booted kernel command line: which deployment is booted.
  std::filesystem::path proc_cmdline = "/proc/cmdline";
  std::filesystem::path workspace() const { return state_dir / state_layout::kWorkspace; }
};

struct StageContext {
  ObjectStore& store;
  StepJournal& journal;
  ProcessRunner& runner;
  CancelToken& cancel;
  const AgentPaths& paths;
  bool after_pivot = false;

  // Progress message on the running stage's in-progress condition.
  void Progress(std::string_view message) const;
  void StartPhase(std::string_view phase) const;
  void StopPhase(std::string_view phase) const;
  api::ImageBasedUpgrade Object() const;
  Work work = Work::kPrep;
  // A step started this many times without finishing fails the work (maxStepAttempts).
  int max_step_attempts = kDefaultMaxStepAttempts;

  // The host of this pass (host_view.hpp), made on first use from paths and the spec.
  HostView& Host();
  // The journaled step runner for this work: journal, failpoints "step.<name>", cancellation,
  // the attempt limit, per-step metrics.
  StepPolicy StepsPolicy();
  StepRunner Steps() { return StepRunner(journal, StepsPolicy()); }
  // Runs a stage's table with Steps(); its first failure undoes and is rethrown.
  template <class Ctx>
  void RunSteps(std::span<const Step<Ctx>> steps, Ctx& c) {
    Steps().Run(steps, c);
  }

  std::shared_ptr<HostView> host_view{};
};

class StageHandler {
 public:
  virtual ~StageHandler() = default;
  virtual Work work() const = 0;
  virtual Outcome Run(StageContext& ctx) = 0;
};

}  // namespace lca
