// The stage machine proven end to end in-process: the real store, journal and reconciler,
// with scripted handlers standing in for Prep/Upgrade/Rollback (their bodies come with the
// stateroot and upgrade work) and the real Abort/Finalize cleanup.
#include "agent/controller/reconciler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/controller/handlers/idle_handlers.hpp"
#include "agent/controller/transition_table.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

using Script = std::function<Outcome(StageContext&)>;

class ScriptedHandler final : public StageHandler {
 public:
  ScriptedHandler(Work w, std::shared_ptr<Script> script) : work_(w), script_(std::move(script)) {}
  Work work() const override { return work_; }
  Outcome Run(StageContext& ctx) override { return (*script_)(ctx); }

 private:
  Work work_;
  std::shared_ptr<Script> script_;
};

class FailingStep final : public CleanupStep {
 public:
  explicit FailingStep(std::shared_ptr<std::atomic<int>> failures)
      : failures_(std::move(failures)) {}
  std::string name() const override { return "flaky"; }
  void Run(StageContext&) override {
    if (failures_->load() > 0) {
      --*failures_;
      throw Error(Errc::kIo, "failed to remove 1 stateroots");
    }
  }

 private:
  std::shared_ptr<std::atomic<int>> failures_;
};

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Work w : {Work::kPrep, Work::kUpgrade, Work::kRollback}) {
      scripts_[w] = std::make_shared<Script>([](StageContext&) { return Outcome::Completed(); });
    }
    cleanup_failures_ = std::make_shared<std::atomic<int>>(0);
    store_ = std::make_unique<ObjectStore>(tmp_ / "state");
    journal_ = std::make_unique<StepJournal>(tmp_ / "state");
  }
  void TearDown() override { Stop(); }

  void Start(bool with_stage_handlers = true) {
    std::vector<std::unique_ptr<StageHandler>> handlers;
    if (with_stage_handlers) {
      for (auto& [w, s] : scripts_) handlers.push_back(std::make_unique<ScriptedHandler>(w, s));
    }
    auto steps = DefaultCleanupSteps();
    steps.push_back(std::make_unique<FailingStep>(cleanup_failures_));
    auto cleanup = std::make_shared<Cleanup>(std::move(steps));
    handlers.push_back(std::make_unique<AbortHandler>(cleanup));
    handlers.push_back(std::make_unique<FinalizeHandler>(cleanup));
    Reconciler::Deps deps{*store_,
                          *journal_,
                          runner_,
                          AgentPaths{tmp_ / "state", tmp_ / "sysroot", tmp_ / "etc", tmp_ / "c"},
                          [this](const api::ImageBasedUpgrade&) { return after_pivot_.load(); },
                          nullptr};
    deps.error_backoff = std::chrono::seconds(1);
    reconciler_ = std::make_unique<Reconciler>(std::move(deps), std::move(handlers));
    store_->SetClientChangeHook([this] { reconciler_->Trigger(); });
    reconciler_->Start();
    Settle();
  }

  void Stop() {
    if (reconciler_) reconciler_->Stop();
    reconciler_.reset();
  }

  // A simulated reboot: the daemon stops, the host comes back (maybe in the other
  // stateroot), and a new daemon loads the object from disk.
  void Reboot(bool after_pivot) {
    Stop();
    after_pivot_ = after_pivot;
    store_ = std::make_unique<ObjectStore>(tmp_ / "state");
    journal_ = std::make_unique<StepJournal>(tmp_ / "state");
    Start();
  }

  void Settle() { ASSERT_TRUE(reconciler_->WaitQuiescent(std::chrono::seconds(10))); }

  void Patch(const std::string& json) {
    store_->ApplyMergePatch(Json::parse(json));
    Settle();
  }

  void SetStage(api::Stage s) {
    Patch(R"({"spec":{"stage":")" + std::string(api::StageName(s)) + R"("}})");
  }

  api::ImageBasedUpgrade Obj() const { return store_->Get(); }

  std::string Cond(std::string_view type) const {
    const auto o = Obj();
    const auto* c = api::FindCondition(*o.status, type);
    return c == nullptr ? "<none>" : c->status + "/" + c->reason + "/" + c->message;
  }

  std::string Next() const {
    const auto o = Obj();  // a named copy: range-for over a temporary's member dangles
    std::string out;
    for (auto s : o.status->valid_next_stages)
      out += (out.empty() ? "" : ",") + std::string(api::StageName(s));
    return out;
  }

  // The STATE/DETAILS a user sees: reason and message of the last condition.
  std::string Last() const {
    const auto o = Obj();
    const auto& c = o.status->conditions.back();
    return c.type + "/" + c.reason + "/" + c.message;
  }

  test::TempDir tmp_;
  SystemProcessRunner runner_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<StepJournal> journal_;
  std::unique_ptr<Reconciler> reconciler_;
  std::map<Work, std::shared_ptr<Script>> scripts_;
  std::shared_ptr<std::atomic<int>> cleanup_failures_;
  std::atomic<bool> after_pivot_{false};
};

const char* kSeed =
    R"({"spec":{"seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/seed:4.15.2"}}})";

TEST_F(ReconcilerTest, FirstStartInitialisesIdle) {
  Start();
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_EQ(Next(), "Prep");
  EXPECT_EQ(Obj().status->observed_generation, 1);
}

TEST_F(ReconcilerTest, HappyPathPrepUpgradeRebootFinalize) {
  *scripts_[Work::kPrep] = [](StageContext& ctx) {
    ctx.StartPhase(api::phase::kStateroot);
    ctx.Progress("Stateroot setup in progress");
    ctx.StopPhase(api::phase::kStateroot);
    return Outcome::Completed("Prep stage completed successfully");
  };
  // Pre-pivot the handler reboots; after the pivot it confirms.
  *scripts_[Work::kUpgrade] = [](StageContext& ctx) {
    if (!ctx.after_pivot) {
      ctx.StartPhase(api::phase::kPrePivot);
      ctx.StopPhase(api::phase::kPrePivot);
      return Outcome::Rebooting();
    }
    ctx.StartPhase(api::phase::kPostPivot);
    ctx.StopPhase(api::phase::kPostPivot);
    return Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("PrepCompleted"), "True/Completed/Prep stage completed successfully");
  EXPECT_EQ(Cond("PrepInProgress"), "False/Completed/Prep completed");
  EXPECT_EQ(Next(), "Idle,Upgrade");
  auto hist = Obj().status->history;
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_TRUE(hist[0].completion_time.has_value());
  ASSERT_EQ(hist[0].phases.size(), 1u);
  EXPECT_EQ(hist[0].phases[0].phase, "Stateroot");

  SetStage(api::Stage::kUpgrade);
  EXPECT_EQ(Cond("UpgradeInProgress"), "True/InProgress/In progress");
  EXPECT_EQ(Next(), "Idle");  // pre-pivot: abort is still possible

  Reboot(/*after_pivot=*/true);
  EXPECT_EQ(Cond("UpgradeCompleted"), "True/Completed/Upgrade completed");
  EXPECT_EQ(Next(), "Idle,Rollback");
  ASSERT_EQ(Obj().status->history.size(), 2u);
  EXPECT_EQ(Obj().status->history[1].phases.size(), 2u);

  journal_->Start("prep.marker");  // whatever the cycle journaled goes with it
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_EQ(Obj().status->conditions.size(), 1u);
  EXPECT_TRUE(Obj().status->history.empty());
  EXPECT_EQ(Next(), "Prep");
  EXPECT_TRUE(journal_->steps().empty());
}

TEST_F(ReconcilerTest, PrepFailedThenReRequestIsNoOpThenAbort) {
  *scripts_[Work::kPrep] = [](StageContext&) {
    return Outcome::Failed("failed to validate seed image: wrong format version");
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Last(), "PrepInProgress/Failed/failed to validate seed image: wrong format version");
  EXPECT_EQ(Cond("PrepCompleted"), "False/Failed/Prep failed");
  EXPECT_EQ(Next(), "Idle");
  // Abort with a workspace left behind: cleanup removes it.
  EnsureDir(tmp_ / "state/workspace", 0700);
  WriteFileAtomic(tmp_ / "state/workspace/seed-pull-secret", "{}", 0600);
  store_->Update([](api::ImageBasedUpgrade& o) {
    o.metadata.annotations["extra-manifest.lca.openshift.io/validation-warning"] = "w";
  });
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "state/workspace"));
  EXPECT_EQ(Obj().metadata.annotations.count("extra-manifest.lca.openshift.io/validation-warning"),
            0u);
}

TEST_F(ReconcilerTest, InvalidTransitionChangesNothingElse) {
  Start();
  const auto before = Obj();
  SetStage(api::Stage::kUpgrade);
  EXPECT_EQ(Cond("UpgradeInProgress"), "False/InvalidTransition/Previous stage not succeeded");
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_EQ(Obj().status->conditions.size(), 2u);
  EXPECT_EQ(Next(), "Prep");
  // Then a valid request clears the stale InvalidTransition.
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("UpgradeInProgress"), "<none>");
  EXPECT_EQ(Cond("PrepCompleted"), "True/Completed/Prep completed");
}

TEST_F(ReconcilerTest, AbortCancelsARunningPrepAtASafePoint) {
  std::atomic<bool> entered{false};
  *scripts_[Work::kPrep] = [&](StageContext& ctx) {
    entered = true;
    // A long pre-cache: it checks for cancellation between images.
    for (int i = 0; i < 600; ++i) {
      if (ctx.cancel.SleepFor(std::chrono::milliseconds(50))) return Outcome::Cancelled();
    }
    return Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  store_->ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})"));
  for (int i = 0; i < 200 && !entered; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(entered);
  EXPECT_EQ(Cond("PrepInProgress"), "True/InProgress/In progress");
  const auto t0 = std::chrono::steady_clock::now();
  SetStage(api::Stage::kIdle);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_EQ(Obj().status->conditions.size(), 1u);
}

TEST_F(ReconcilerTest, AbortFailedThenManualCleanupDoneRerunsCleanup) {
  *scripts_[Work::kPrep] = [](StageContext&) { return Outcome::Failed("boom"); };
  *cleanup_failures_ = 1;
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(
      Cond("Idle"),
      "False/AbortFailed/failed to remove 1 stateroots Perform cleanup manually then add "
      "'lca.openshift.io/manual-cleanup-done' annotation to ibu CR to transition back to Idle");
  EXPECT_EQ(Next(), "");
  Patch(R"({"metadata":{"annotations":{"lca.openshift.io/manual-cleanup-done":""}}})");
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
  EXPECT_EQ(Obj().metadata.annotations.count("lca.openshift.io/manual-cleanup-done"), 0u);
}

TEST_F(ReconcilerTest, FinalizeFailedKeepsItsReason) {
  *scripts_[Work::kUpgrade] = [](StageContext&) { return Outcome::Completed(); };
  *cleanup_failures_ = 2;
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  after_pivot_ = true;
  SetStage(api::Stage::kUpgrade);
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Obj().status->conditions.back().reason, "FinalizeFailed");
  // The annotation re-runs finalize, which fails again, then succeeds on the next try.
  Patch(R"({"metadata":{"annotations":{"lca.openshift.io/manual-cleanup-done":"1"}}})");
  EXPECT_EQ(Obj().status->conditions.back().reason, "FinalizeFailed");
  Patch(R"({"metadata":{"annotations":{"lca.openshift.io/manual-cleanup-done":"2"}}})");
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
}

TEST_F(ReconcilerTest, ManualRollbackAcrossTheRebootThenFinalize) {
  *scripts_[Work::kRollback] = [](StageContext& ctx) {
    return ctx.after_pivot ? Outcome::Rebooting() : Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  after_pivot_ = true;
  SetStage(api::Stage::kUpgrade);
  SetStage(api::Stage::kRollback);
  EXPECT_EQ(Cond("UpgradeCompleted"), "False/Failed/Rollback requested");
  EXPECT_EQ(Cond("RollbackInProgress"), "True/InProgress/In progress");
  EXPECT_EQ(Next(), "");
  Reboot(/*after_pivot=*/false);
  EXPECT_EQ(Cond("RollbackCompleted"), "True/Completed/Rollback completed");
  EXPECT_EQ(Next(), "Idle");
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
}

TEST_F(ReconcilerTest, UpgradeFailedAfterPivotOffersOnlyRollback) {
  *scripts_[Work::kUpgrade] = [](StageContext&) {
    return Outcome::Failed("post-pivot hook failed");
  };
  *scripts_[Work::kRollback] = [](StageContext& ctx) {
    return ctx.after_pivot ? Outcome::Failed("set-default failed") : Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  after_pivot_ = true;
  SetStage(api::Stage::kUpgrade);
  EXPECT_EQ(Next(), "Rollback");
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Cond("Idle"),
            "False/InvalidTransition/Transition to Idle not allowed - Rollback first");
  SetStage(api::Stage::kRollback);
  EXPECT_EQ(Cond("RollbackInProgress"), "False/Failed/set-default failed");
  EXPECT_EQ(Next(), "");
}

TEST_F(ReconcilerTest, RequeueRunsTheHandlerAgainLater) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  *scripts_[Work::kPrep] = [calls](StageContext&) {
    return ++*calls < 3 ? Outcome::Requeue(std::chrono::seconds(0), "waiting")
                        : Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(calls->load(), 3);
  EXPECT_EQ(Cond("PrepCompleted"), "True/Completed/Prep completed");
}

TEST_F(ReconcilerTest, ResumesTheRunningStageAfterARestart) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto entered = std::make_shared<std::atomic<bool>>(false);
  *scripts_[Work::kPrep] = [calls, entered](StageContext& ctx) {
    ++*calls;
    if (!ctx.journal.IsDone("prep.step1")) {
      ctx.journal.Start("prep.step1");
      *entered = true;
      // The daemon is stopped (SIGTERM) while this step runs.
      while (!ctx.cancel.SleepFor(std::chrono::milliseconds(20))) {
      }
      return Outcome::Cancelled();
    }
    return Outcome::Completed();
  };
  Start();
  Patch(kSeed);
  store_->ApplyMergePatch(Json::parse(R"({"spec":{"stage":"Prep"}})"));
  for (int i = 0; i < 500 && !*entered; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(*entered);
  Stop();
  EXPECT_EQ(Cond("PrepInProgress"), "True/InProgress/In progress");
  ASSERT_NE(journal_->Interrupted(), nullptr);
  EXPECT_EQ(journal_->Interrupted()->name, "prep.step1");
  journal_->Done("prep.step1");  // the restarted handler finds the step finished
  Reboot(false);
  EXPECT_EQ(Cond("PrepCompleted"), "True/Completed/Prep completed");
  EXPECT_EQ(calls->load(), 2);
  ASSERT_EQ(Obj().status->history.size(), 1u);  // the resumed run is the same history entry
}

TEST_F(ReconcilerTest, RebootingIsNotRunAgainInTheSameBoot) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  *scripts_[Work::kUpgrade] = [calls](StageContext&) {
    ++*calls;
    return Outcome::Rebooting();
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  SetStage(api::Stage::kUpgrade);
  Patch(R"({"metadata":{"annotations":{"lca.openshift.io/trigger-reconcile":"1"}}})");
  EXPECT_EQ(calls->load(), 1);
}

TEST_F(ReconcilerTest, CancelledWithoutARequestIsAnAgentBug) {
  *scripts_[Work::kPrep] = [](StageContext&) { return Outcome::Cancelled(); };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("PrepInProgress"),
            "False/Failed/internal error: Prep returned Cancelled but nothing cancelled it");
}

TEST_F(ReconcilerTest, MissingHandlerFailsTheStageSayingSo) {
  Start(/*with_stage_handlers=*/false);
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("PrepInProgress"), "False/Failed/this lifecycle-agent build has no Prep handler");
  SetStage(api::Stage::kIdle);
  EXPECT_EQ(Cond("Idle"), "True/Idle/Idle");
}

TEST_F(ReconcilerTest, HandlerExceptionAndUnexpectedOutcomeBecomeFailures) {
  *scripts_[Work::kPrep] = [](StageContext&) -> Outcome {
    throw Error(Errc::kProcess, "Prep: importing seed: pull-local: exit 1");
  };
  Start();
  Patch(kSeed);
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("PrepInProgress"), "False/Failed/Prep: importing seed: pull-local: exit 1");
  SetStage(api::Stage::kIdle);
  *scripts_[Work::kPrep] = [](StageContext&) { return Outcome::Rebooting(); };  // no row for it
  SetStage(api::Stage::kPrep);
  EXPECT_EQ(Cond("PrepInProgress"),
            "False/Failed/internal error: Prep returned unexpected outcome Rebooting");
}

TEST(TransitionTable, EveryRowIsUniqueAndEveryWorkCanCompleteAndFail) {
  std::set<std::pair<int, int>> seen;
  for (const auto& row : TransitionTable()) {
    EXPECT_TRUE(seen.insert({static_cast<int>(row.work), static_cast<int>(row.outcome)}).second)
        << WorkName(row.work) << "/" << OutcomeName(row.outcome);
  }
  for (Work w : {Work::kPrep, Work::kUpgrade, Work::kRollback, Work::kAbort, Work::kFinalize}) {
    EXPECT_TRUE(LookupTransition(w, OutcomeKind::kCompleted)) << WorkName(w);
    EXPECT_TRUE(LookupTransition(w, OutcomeKind::kFailed)) << WorkName(w);
  }
  // Cleanup is never cancelled: nothing is a valid next stage while it runs.
  EXPECT_FALSE(LookupTransition(Work::kAbort, OutcomeKind::kCancelled));
  EXPECT_FALSE(LookupTransition(Work::kFinalize, OutcomeKind::kRebooting));
}

}  // namespace
}  // namespace lca
