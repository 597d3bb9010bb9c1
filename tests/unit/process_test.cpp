#include "common/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace lca {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

ProcessSpec Sh(const std::string& script) { return ProcessSpec{.argv = {"sh", "-c", script}}; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "process_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A SIGKILLed orphan may linger as a zombie until init reaps it; dead is dead.
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(ProcessTest, CapturesExitCode) {
  SystemProcessRunner runner;
  ProcessResult r = runner.Run(Sh("exit 3"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "exited with status 3");

  r = runner.Run(ProcessSpec{.argv = {"true"}});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.exit_code, 0);
}

TEST(ProcessTest, CapturesStdoutExactly) {
  SystemProcessRunner runner;
  ProcessResult r = runner.Run(ProcessSpec{.argv = {"printf", "a b\\n\\tc\\0d"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, std::string("a b\n\tc\0d", 8));
  EXPECT_EQ(r.stderr_tail, "");
}

TEST(ProcessTest, StdoutLinesArriveWhileTheChildRuns) {
  // The child prints a line, then waits for the marker the callback creates on that line: the
  // run only finishes in time if lines are handed over as they come, not at exit.
  TempDir dir;
  const std::string marker = (dir.path() / "seen-one").string();
  ProcessSpec spec =
      Sh("echo one; while [ ! -e \"$1\" ]; do sleep 0.02; done; printf 'two\\nthree'");
  spec.argv.push_back("sh");
  spec.argv.push_back(marker);
  spec.timeout = seconds(10);
  std::vector<std::string> lines;
  spec.on_stdout_line = [&](const std::string& line) {
    lines.push_back(line);
    if (line == "one") std::ofstream(marker).put('x');
  };
  SystemProcessRunner runner;
  const ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(r.stdout_data, "one\ntwo\nthree");
}

TEST(ProcessTest, CancelStopsTheWholeGroupPromptly) {
  // A child and a grandchild that would run for a minute; cancel after the first line.
  ProcessSpec spec = Sh("sleep 60 & echo started; wait");
  spec.timeout = seconds(30);
  std::atomic<bool> started{false};
  spec.on_stdout_line = [&](const std::string& line) { started = started || line == "started"; };
  spec.cancelled = [&] { return started.load(); };
  SystemProcessRunner runner;
  const auto t0 = std::chrono::steady_clock::now();
  const ProcessResult r = runner.Run(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(5));
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "cancelled (stopped)");
}

TEST(ProcessTest, CancelThatNeverFiresChangesNothing) {
  ProcessSpec spec = Sh("sleep 0.3; echo done");
  spec.cancelled = [] { return false; };
  SystemProcessRunner runner;
  const ProcessResult r = runner.Run(spec);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(r.stdout_data, "done\n");
}

TEST(ProcessTest, ArgumentsAreNotShellInterpreted) {
  SystemProcessRunner runner;
  ProcessResult r = runner.Run(ProcessSpec{.argv = {"echo", "$HOME", "a;b", "*", "'q'"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_data, "$HOME a;b * 'q'\n");
}

TEST(ProcessTest, LargeStdoutAndStderrTogetherDoNotDeadlock) {
  SystemProcessRunner runner;
  // 2 MiB on each stream, interleaved, far beyond any pipe buffer.
  ProcessSpec spec =
      Sh("i=0; while [ $i -lt 32 ]; do head -c 65536 /dev/zero | tr '\\0' o; "
         "head -c 65536 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done");
  spec.stderr_tail_bytes = 100;
  spec.timeout = seconds(30);
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data.size(), 2u * 1024 * 1024);
  EXPECT_EQ(r.stdout_data.find_first_not_of('o'), std::string::npos);
  EXPECT_EQ(r.stderr_tail, std::string(100, 'e'));
}

TEST(ProcessTest, StderrTailKeepsOnlyTheEnd) {
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("printf 0123456789abcdefghij >&2");
  spec.stderr_tail_bytes = 10;
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.stderr_tail, "abcdefghij");

  spec.stderr_tail_bytes = 100;
  EXPECT_EQ(runner.Run(spec).stderr_tail, "0123456789abcdefghij");

  spec.stderr_tail_bytes = 0;
  EXPECT_EQ(runner.Run(spec).stderr_tail, "");
}

TEST(ProcessTest, StdinRoundTripsThroughCat) {
  SystemProcessRunner runner;
  std::string big(3 * 1024 * 1024 + 7, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  ProcessSpec spec{.argv = {"cat"}, .stdin_data = big};
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, big);

  spec.stdin_data = "";
  r = runner.Run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_data, "");
}

TEST(ProcessTest, StdinIsDevNullByDefault) {
  SystemProcessRunner runner;
  ProcessResult r = runner.Run(ProcessSpec{.argv = {"cat"}, .timeout = seconds(10)});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "");
}

TEST(ProcessTest, ChildThatIgnoresStdinDoesNotKillUs) {
  SystemProcessRunner runner;
  // More than a pipe buffer, so the write is still pending when the child exits (EPIPE).
  ProcessSpec spec = Sh("exit 4");
  spec.stdin_data = std::string(1024 * 1024, 'z');
  ProcessResult r = runner.Run(spec);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.term_signal, 0);
}

TEST(ProcessTest, EnvOverridesAndAdds) {
  ::setenv("LCA_PROCESS_TEST_INHERITED", "from-parent", 1);
  ::setenv("LCA_PROCESS_TEST_OVERRIDDEN", "old", 1);
  SystemProcessRunner runner;
  ProcessSpec spec =
      Sh("printf '%s|%s|%s' \"$LCA_PROCESS_TEST_INHERITED\" \"$LCA_PROCESS_TEST_OVERRIDDEN\" "
         "\"$LCA_PROCESS_TEST_ADDED\"");
  spec.env = {{"LCA_PROCESS_TEST_OVERRIDDEN", "new"}, {"LCA_PROCESS_TEST_ADDED", "a:b;c d"}};
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "from-parent|new|a:b;c d");
}

TEST(ProcessTest, InheritEnvFalseGivesOnlyEnv) {
  ::setenv("LCA_PROCESS_TEST_INHERITED", "from-parent", 1);
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"env"}, .env = {{"ONLY", "this"}}, .inherit_env = false};
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "ONLY=this\n");
}

TEST(ProcessTest, RunsInCwd) {
  TempDir dir;
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"pwd"}, .cwd = dir.path()};
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::string printed = r.stdout_data;
  if (!printed.empty() && printed.back() == '\n') printed.pop_back();
  EXPECT_EQ(std::filesystem::canonical(printed), std::filesystem::canonical(dir.path()));
}

TEST(ProcessTest, MissingCwdIsAnErrorNotASilentFallback) {
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"pwd"}, .cwd = "/nonexistent/lca-process-test"};
  try {
    runner.Run(spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/lca-process-test"), std::string::npos);
  }
}

TEST(ProcessTest, TimeoutKillsTheWholeProcessGroup) {
  TempDir dir;
  const auto pid_file = dir.path() / "grandchild.pid";
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("sleep 30 & echo $! > \"$1\"; sleep 30");
  spec.argv.push_back("sh");
  spec.argv.push_back(pid_file.string());
  spec.timeout = milliseconds(500);

  const auto start = steady_clock::now();
  ProcessResult r = runner.Run(spec);
  const auto elapsed = steady_clock::now() - start;

  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(r.Describe(), "timed out after 500ms (killed)");
  EXPECT_LT(elapsed, seconds(3));

  std::ifstream in(pid_file);
  pid_t grandchild = 0;
  ASSERT_TRUE(in >> grandchild);
  ASSERT_GT(grandchild, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ProcessGone(grandchild);
    if (!gone) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived the timeout";
}

TEST(ProcessTest, TimeoutReturnsEvenIfADescendantEscapedTheGroup) {
  // setsid puts the grandchild outside the group kill; it still holds stdout, and Run must not
  // wait for it.
  TempDir dir;
  const auto pid_file = dir.path() / "escaped.pid";
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("setsid sh -c 'echo $$ > \"$1\"; exec sleep 30' sh \"$1\" & sleep 30");
  spec.argv.push_back("sh");
  spec.argv.push_back(pid_file.string());
  spec.timeout = milliseconds(300);
  const auto start = steady_clock::now();
  ProcessResult r = runner.Run(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(steady_clock::now() - start, seconds(4));

  std::ifstream in(pid_file);
  pid_t escaped = 0;
  if (in >> escaped && escaped > 0) ::kill(escaped, SIGKILL);
}

TEST(ProcessTest, TimeoutAppliesEvenAfterChildClosesItsOutput) {
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("exec >/dev/null 2>&1; sleep 30");
  spec.timeout = milliseconds(300);
  const auto start = steady_clock::now();
  ProcessResult r = runner.Run(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(steady_clock::now() - start, seconds(3));
}

TEST(ProcessTest, FastCommandIsNotReportedAsTimedOut) {
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"echo", "hi"}, .timeout = seconds(5)};
  ProcessResult r = runner.Run(spec);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "hi\n");
}

TEST(ProcessTest, ReportsKillingSignal) {
  SystemProcessRunner runner;
  ProcessResult r = runner.Run(Sh("kill -TERM $$"));
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "killed by signal 15");

  // Exit status 9 and signal 9 must stay distinguishable.
  r = runner.Run(Sh("exit 9"));
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.exit_code, 9);
}

TEST(ProcessTest, ChildGetsDefaultSigpipe) {
  // If SIGPIPE stayed blocked or ignored in the child, `yes` would loop on EPIPE forever.
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("yes | head -n 1");
  spec.timeout = seconds(10);
  ProcessResult r = runner.Run(spec);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "y\n");
}

TEST(ProcessTest, RunCheckedMessageHasCommandStatusAndStderr) {
  SystemProcessRunner runner;
  ProcessSpec spec = Sh("echo 'first line' >&2; echo '  boom: disk full  ' >&2; exit 3");
  try {
    RunChecked(runner, spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kProcess);
    EXPECT_EQ(std::string(e.what()),
              "sh -c echo 'first line' >&2; echo '  boom: disk full  ' >&2; exit 3: "
              "exited with status 3: first line\n  boom: disk full");
  }
}

TEST(ProcessTest, RunCheckedUsesBasenameAndTruncatesLongArgs) {
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"/bin/sh", "-c", "exit 1", std::string(500, 'x')}};
  try {
    RunChecked(runner, spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "sh -c exit 1 " + std::string(200, 'x') + "...: exited with status 1");
  }
}

TEST(ProcessTest, RunCheckedTimeoutIsKTimeout) {
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"sleep", "30"}, .timeout = seconds(1)};
  try {
    RunChecked(runner, spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kTimeout);
    EXPECT_EQ(std::string(e.what()), "sleep 30: timed out after 1s (killed)");
  }
}

TEST(ProcessTest, RunCheckedReturnsResultOnSuccess) {
  SystemProcessRunner runner;
  ProcessResult r = RunChecked(runner, ProcessSpec{.argv = {"echo", "ok"}});
  EXPECT_EQ(r.stdout_data, "ok\n");
}

TEST(ProcessTest, MissingExecutableIsNotFound) {
  SystemProcessRunner runner;
  for (const std::string name : {"lca-no-such-command-xyz", "/nonexistent/lca-tool"}) {
    try {
      RunChecked(runner, ProcessSpec{.argv = {name, "arg"}});
      FAIL() << "expected an error for " << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kNotFound);
      EXPECT_EQ(std::string(e.what()), name + ": command not found");
    }
  }
}

TEST(ProcessTest, NonExecutableFileIsAProcessError) {
  TempDir dir;
  const auto file = dir.path() / "not-executable";
  std::ofstream(file) << "#!/bin/sh\necho hi\n";
  SystemProcessRunner runner;
  try {
    runner.Run(ProcessSpec{.argv = {file.string()}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kProcess);
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
}

TEST(ProcessTest, EmptyArgvIsInvalid) {
  SystemProcessRunner runner;
  try {
    runner.Run(ProcessSpec{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
  }
}

TEST(ProcessTest, PathFromSpecEnvIsUsedForLookup) {
  TempDir dir;
  const auto tool = dir.path() / "lca-test-tool";
  std::ofstream(tool) << "#!/bin/sh\necho tool-ran\n";
  std::filesystem::permissions(tool, std::filesystem::perms::owner_all);
  SystemProcessRunner runner;
  ProcessSpec spec{.argv = {"lca-test-tool"},
                   .env = {{"PATH", dir.path().string() + ":/usr/bin:/bin"}}};
  ProcessResult r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.stdout_data, "tool-ran\n");
}

TEST(ProcessTest, ConcurrentRunsFromFourThreads) {
  SystemProcessRunner runner;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&runner, &failures, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string token = std::to_string(t) + "-" + std::to_string(i);
        ProcessSpec spec = Sh("cat; printf ' %s' \"$TOKEN\"; printf err >&2; exit $1");
        spec.argv.push_back("sh");
        spec.argv.push_back(std::to_string(i % 3));
        spec.env = {{"TOKEN", token}};
        spec.stdin_data = "in-" + token;
        spec.timeout = seconds(30);
        ProcessResult r = runner.Run(spec);
        if (r.exit_code != i % 3 || r.stdout_data != "in-" + token + " " + token ||
            r.stderr_tail != "err" || r.timed_out) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ProcessTest, LongLivedChildDoesNotHoldOtherRunsPipes) {
  // Another thread keeps forking children that leave a 4 s sleeper behind, holding whatever fds
  // the fork inherited. If one of this thread's pipe ends leaked into it, that Run would wait
  // for the sleeper to exit before seeing EOF.
  SystemProcessRunner runner;
  std::atomic<bool> stop{false};
  std::thread spawner([&] {
    while (!stop) runner.Run(Sh("sleep 4 </dev/null >/dev/null 2>&1 &"));
  });
  auto slowest = steady_clock::duration::zero();
  for (int i = 0; i < 50; ++i) {
    const auto start = steady_clock::now();
    ProcessResult r = runner.Run(ProcessSpec{.argv = {"cat"}, .stdin_data = "y"});
    slowest = std::max(slowest, steady_clock::now() - start);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.stdout_data, "y");
  }
  stop = true;
  spawner.join();
  EXPECT_LT(slowest, seconds(2));
}

TEST(ProcessTest, RejectsNulBytesAndBadEnvNames) {
  SystemProcessRunner runner;
  for (const ProcessSpec& spec :
       {ProcessSpec{.argv = {"echo", std::string("a\0b", 3)}},
        ProcessSpec{.argv = {"true"}, .env = {{"A=B", "x"}}},
        ProcessSpec{.argv = {"true"}, .env = {{"", "x"}}},
        ProcessSpec{.argv = {"true"}, .env = {{"A", std::string("x\0y", 3)}}}}) {
    try {
      runner.Run(spec);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    }
  }
}

TEST(ProcessTest, DescribeFormats) {
  ProcessResult r;
  r.exit_code = 0;
  EXPECT_EQ(r.Describe(), "exited with status 0");
  r.timed_out = true;
  r.timeout = seconds(2);
  EXPECT_EQ(r.Describe(), "timed out after 2s (killed)");
  r.timeout = milliseconds(1500);
  EXPECT_EQ(r.Describe(), "timed out after 1.5s (killed)");
  r.timeout = milliseconds(0);
  EXPECT_EQ(r.Describe(), "timed out (killed)");
}

}  // namespace
}  // namespace lca
