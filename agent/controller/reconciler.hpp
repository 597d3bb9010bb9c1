#pragma once
// The event-driven control loop. It wakes on a client change, a finished handler, a due
// requeue or Stop(); it never polls faster than the earliest due requeue (or the heartbeat
// interval, for the systemd watchdog).
//
// Each pass does what the Go reconciler does (§2.6): compute afterPivot, validate a requested
// transition, refresh validNextStages, and make sure the handler for the work in progress is
// running. Handlers run on one worker thread so the API stays responsive and an abort can
// cancel a long Prep at its next safe point.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/api/ibu.hpp"
#include "agent/controller/stage_handler.hpp"

namespace lca {

class ObjectStore;
class StepJournal;
class ProcessRunner;

// The work the status says is in progress (the Idle reasons map to Abort/Finalize), or
// nullopt when nothing runs (also for AbortFailed/FinalizeFailed, which wait for a human).
std::optional<Work> ActiveWork(const api::ImageBasedUpgrade& ibu);

class Reconciler {
 public:
  struct Deps {
    ObjectStore& store;
    StepJournal& journal;
    ProcessRunner& runner;
    AgentPaths paths;
    // Is the target stateroot booted? May throw; the pass is then retried later.
    std::function<bool(const api::ImageBasedUpgrade&)> after_pivot;
    // Called from the loop at least every heartbeat_interval (systemd watchdog).
    std::function<void()> heartbeat;
    std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(30)};
    std::chrono::seconds error_backoff{30};
    // maxStepAttempts: a step started this often without finishing fails its work.
    int max_step_attempts = kDefaultMaxStepAttempts;
  };

  Reconciler(Deps deps, std::vector<std::unique_ptr<StageHandler>> handlers);
  ~Reconciler();

  void Start();
  // Cancels a running handler at its next safe point, waits for it, stops the loop.
  void Stop();
  // Asks for a pass soon (a client changed the object).
  void Trigger();

  // For tests: waits until no handler runs, no pass is pending and nothing is due within
  // `horizon`; returns false on timeout.
  bool WaitQuiescent(std::chrono::milliseconds timeout,
                     std::chrono::milliseconds horizon = std::chrono::milliseconds(500));

 private:
  void Loop();
  void Pass();
  void ApplyFinishedWork();
  bool AfterPivot(const api::ImageBasedUpgrade& ibu) const;
  void StartWorker(Work work, bool after_pivot);

  Deps deps_;
  std::map<Work, std::unique_ptr<StageHandler>> handlers_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool triggered_ = true;  // the first pass runs at once
  bool in_pass_ = false;
  bool awaiting_reboot_ = false;  // a handler asked for a reboot: start nothing more
  std::optional<std::chrono::steady_clock::time_point> due_;  // a requeue

  std::thread loop_;
  std::thread worker_;
  bool worker_running_ = false;
  Work worker_work_ = Work::kPrep;
  std::shared_ptr<CancelToken> worker_cancel_;
  std::optional<Outcome> worker_outcome_;  // set when the worker returns
};

}  // namespace lca
