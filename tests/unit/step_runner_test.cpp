// The one journaled step runner (common/step_runner.hpp) on a real journal file: order, skip
// of done steps, journal-before-run, failpoints, undo in reverse order, the attempt limit, the
// keep-going mode of cleanup, and recovery's older journal formats.
#include "common/step_runner.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/step_journal.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

struct Fake {
  std::vector<std::string> log;
  std::string fail_in;  // a step that throws
  StepJournal* journal = nullptr;
};

void Body(Fake& r, const char* name) {
  // Journal-before-run: the step is already recorded as started when its body runs.
  ASSERT_NE(r.journal->Find(name), nullptr);
  EXPECT_EQ(r.journal->Find(name)->state, "started");
  r.log.push_back(name);
  if (r.fail_in == name) throw Error(Errc::kIo, std::string("boom in ") + name);
}

void A(Fake& r) { Body(r, "t.a"); }
void B(Fake& r) { Body(r, "t.b"); }
void C(Fake& r) { Body(r, "t.c"); }
void UndoA(Fake& r) { r.log.push_back("undo t.a"); }
void UndoB(Fake& r) { r.log.push_back("undo t.b"); }
void UndoC(Fake& r) { r.log.push_back("undo t.c"); }

constexpr Step<Fake> kTable[] = {
    {"t.a", 1, &A, &UndoA},
    {"t.b", 2, &B},
    {"t.c", 1, &C, &UndoC},
};
constexpr Step<Fake> kUndoTable[] = {
    {"t.a", 1, &A, &UndoA},
    {"t.b", 1, &B, &UndoB},
    {"t.c", 1, &C, &UndoC},
};

std::string What(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(StepRunner, RunsInOrderJournalsAndSkipsDoneStepsOnResume) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  Fake r{{}, "t.b", &j};
  std::vector<double> shares;
  StepPolicy policy;
  policy.on_done = [&](const std::string&, std::chrono::milliseconds, double share) {
    shares.push_back(share);
  };
  EXPECT_EQ(What([&] { StepRunner(j, policy).Run<Fake>(kTable, r); }), "boom in t.b");
  EXPECT_EQ(r.log, (std::vector<std::string>{"t.a", "t.b", "undo t.a"}));
  EXPECT_EQ(j.Find("t.b")->state, "failed");
  EXPECT_EQ(shares, (std::vector<double>{0.25}));
  // A resumed run: t.a is done and skipped.
  StepJournal reloaded(tmp.path());
  Fake again{{}, "", &reloaded};
  StepRunner(reloaded, policy).Run<Fake>(kTable, again);
  EXPECT_EQ(again.log, (std::vector<std::string>{"t.b", "t.c"}));
  for (const char* n : {"t.a", "t.b", "t.c"}) EXPECT_TRUE(reloaded.IsDone(n)) << n;
}

TEST(StepRunner, UndoesTheFailedStepAndEveryDoneStepInReverseOrder) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  Fake r{{}, "t.c", &j};
  EXPECT_THROW(StepRunner(j, {}).Run<Fake>(kUndoTable, r), Error);
  EXPECT_EQ(r.log,
            (std::vector<std::string>{"t.a", "t.b", "t.c", "undo t.c", "undo t.b", "undo t.a"}));
}

TEST(StepRunner, CancellationStopsBeforeAStepAndUndoesNothing) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  Fake r{{}, "", &j};
  StepPolicy policy;
  policy.cancelled = [&] { return r.log.size() == 1; };
  try {
    StepRunner(j, policy).Run<Fake>(kUndoTable, r);
    FAIL() << "not cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kCancelled);
    EXPECT_STREQ(e.what(), "cancelled before t.b");
  }
  EXPECT_EQ(r.log, (std::vector<std::string>{"t.a"}));
}

TEST(StepRunner, AgentJournalFiresStepFailpointAfterPersisting) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  Fake r{{}, "", &j};
  SetFailpoint("step.t.b", "error");
  EXPECT_EQ(What([&] { StepRunner(j, {}).Run<Fake>(kTable, r); }), "failpoint step.t.b");
  SetFailpoint("step.t.b", "");
  EXPECT_EQ(r.log, (std::vector<std::string>{"t.a", "undo t.a"}));  // t.b never ran
  EXPECT_EQ(StepJournal(tmp.path()).Find("t.b")->state, "failed");
}

TEST(StepRunner, PolicyFailpointIsInsideTheStepsErrorContext) {
  test::TempDir tmp;
  StepJournal j(tmp.path(), "restore-journal.json");
  Fake r{{}, "", &j};
  StepPolicy policy;
  policy.failpoint_prefix = "recovery.restore.";
  policy.name_in_errors = true;
  SetFailpoint("recovery.restore.t.c", "error");
  EXPECT_EQ(What([&] { StepRunner(j, policy).Run<Fake>(kTable, r); }),
            "t.c: failpoint recovery.restore.t.c");
  SetFailpoint("recovery.restore.t.c", "");
}

// A step that kills the process every time: each start counts; the limit refuses the next one
// with a message naming the step and the count, and the step's undo still runs.
TEST(StepRunner, StepStartedMaxAttemptsTimesWithoutFinishingIsGivenUp) {
  test::TempDir tmp;
  for (int i = 1; i <= 3; ++i) {
    StepJournal j(tmp.path());
    j.Start("t.a");
    j.Done("t.a");   // as if t.a finished before the kills
    j.Start("t.b");  // the process "dies" inside t.b
    EXPECT_EQ(j.UnfinishedAttempts("t.b"), i);
  }
  StepJournal j(tmp.path());
  Fake r{{}, "", &j};
  StepPolicy policy;
  policy.give_up_hint = "abort";
  EXPECT_EQ(What([&] { StepRunner(j, policy).Run<Fake>(kUndoTable, r); }),
            "step t.b was started 3 times without finishing (the process stopped during it "
            "each time); it is not started again: abort");
  EXPECT_EQ(r.log, (std::vector<std::string>{"undo t.b", "undo t.a"}));
  EXPECT_EQ(j.Find("t.b")->state, "failed");
  // A failed step starts counting afresh (a human retries it).
  j.Start("t.b");
  EXPECT_EQ(j.UnfinishedAttempts("t.b"), 1);
}

TEST(StepRunner, ConfigurableLimitAllowsMoreAttempts) {
  test::TempDir tmp;
  {
    StepJournal j(tmp.path());
    for (int i = 0; i < 3; ++i) j.Start("t.a");
  }
  StepJournal j(tmp.path());
  Fake r{{}, "", &j};
  StepPolicy policy;
  policy.max_attempts = 4;
  StepRunner(j, policy).Run<Fake>(kTable, r);
  EXPECT_EQ(r.log, (std::vector<std::string>{"t.a", "t.b", "t.c"}));
}

TEST(StepRunner, RunAllKeepsGoingRerunsDoneStepsAndJoinsErrors) {
  test::TempDir tmp;
  StepJournal j(tmp.path());
  StepPolicy policy;
  policy.skip_done = false;
  std::vector<std::string> ran;
  std::vector<StepFn> steps = {
      {"c.one", 1,
       [&] {
         ran.push_back("one");
         throw Error(Errc::kIo, "e1");
       },
       nullptr},
      {"c.two", 1, [&] { ran.push_back("two"); }, nullptr},
      {"c.three", 1,
       [&] {
         ran.push_back("three");
         throw Error(Errc::kIo, "e3");
       },
       nullptr},
  };
  EXPECT_EQ(StepRunner(j, policy).RunAll(steps), "e1 e3");
  EXPECT_EQ(StepRunner(j, policy).RunAll(steps), "e1 e3");
  EXPECT_EQ(ran, (std::vector<std::string>{"one", "two", "three", "one", "two", "three"}));
  EXPECT_EQ(j.Find("c.one")->error, "e1");
}

TEST(StepJournal, ReadsRecoverysOlderFormats) {
  test::TempDir tmp;
  WriteFileAtomic(tmp / "restore-journal.json",
                  R"({"done":["files.stop-services","files.wipe-crio"],"running":"files.etc",)"
                  R"("selinux":"Enforcing","containers":{"etcd":"abc"}})",
                  0600);
  StepJournal restore(tmp.path(), "restore-journal.json");
  EXPECT_TRUE(restore.IsDone("files.wipe-crio"));
  ASSERT_NE(restore.Interrupted(), nullptr);
  EXPECT_EQ(restore.Interrupted()->name, "files.etc");
  EXPECT_EQ(restore.extra()["selinux"], "Enforcing");
  EXPECT_EQ(restore.extra()["containers"]["etcd"], "abc");
  restore.Save();
  StepJournal reread(tmp.path(), "restore-journal.json");
  EXPECT_EQ(reread.extra()["selinux"], "Enforcing");
  EXPECT_TRUE(reread.IsDone("files.stop-services"));

  WriteFileAtomic(tmp / ".backup-journal.json",
                  R"({"step":"etcd","startedAt":"2026-01-01T00:00:00Z"})", 0600);
  StepJournal backup(tmp.path(), ".backup-journal.json");
  ASSERT_NE(backup.Interrupted(), nullptr);
  EXPECT_EQ(backup.Interrupted()->name, "etcd");
}

}  // namespace
}  // namespace lca
