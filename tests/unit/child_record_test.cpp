// A killed daemon's children must not outlive it: the direct child dies with it
// (PR_SET_PDEATHSIG), and what that child started is found through the record of running
// process groups and killed when the next daemon starts.
#include "common/child_record.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

using namespace std::chrono_literals;

// Alive and not a zombie (a reparented child may wait for a reaper that never comes here).
bool Running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string StartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; ++i) {
  }
  return f;
}

std::string BootId() {
  std::string id = ReadFile("/proc/sys/kernel/random/boot_id");
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

class ChildRecordTest : public ::testing::Test {
 protected:
  void TearDown() override { SetChildRecordFile({}); }
  test::TempDir tmp_{"lca-children"};
};

TEST_F(ChildRecordTest, RunningChildrenAreRecordedUntilTheyEnd) {
  const auto file = tmp_ / "children";
  SetChildRecordFile(file);
  SystemProcessRunner runner;
  // The record is written right after the spawn, so the child may run before it exists.
  const std::string f = "'" + file.string() + "'";
  const auto r =
      runner.Run(ProcessSpec{.argv = {"sh", "-c",
                                      "i=0; while [ ! -s " + f +
                                          " ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; "
                                          "echo $$; cat " +
                                          f}});
  ASSERT_TRUE(r.ok()) << r.stderr_tail;
  std::istringstream out(r.stdout_data);
  std::string pid, pgid, start, boot, command;
  out >> pid >> pgid >> start >> boot >> command;
  EXPECT_EQ(pgid, pid) << r.stdout_data;
  EXPECT_EQ(boot, BootId());
  EXPECT_EQ(command, "sh");
  EXPECT_EQ(ReadFile(file), "") << "the record outlived the child";
}

TEST_F(ChildRecordTest, KilledStarterTakesItsChildAlongAndTheNextStartReapsTheRest) {
  const auto file = tmp_ / "children";
  const auto grandchild_file = tmp_ / "grandchild";
  const pid_t starter = ::fork();
  ASSERT_GE(starter, 0);
  if (starter == 0) {
    // The "daemon": records its children and blocks in Run, as a step would.
    SetChildRecordFile(file);
    SystemProcessRunner runner;
    runner.Run(ProcessSpec{
        .argv = {"sh", "-c", "sleep 300 & echo $! > '" + grandchild_file.string() + "'; wait"}});
    ::_exit(0);
  }
  pid_t child = 0;
  pid_t grandchild = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream rec(file);
        std::ifstream gc(grandchild_file);
        return static_cast<bool>(rec >> child) && static_cast<bool>(gc >> grandchild);
      },
      10s));
  ASSERT_TRUE(Running(child));
  ASSERT_TRUE(Running(grandchild));
  ::kill(starter, SIGKILL);
  ::waitpid(starter, nullptr, 0);

  EXPECT_TRUE(WaitUntil([&] { return !Running(child); }, 2s)) << "PDEATHSIG did not stop it";
  // The grandchild has no death signal of its own: it is what the record is for.
  EXPECT_TRUE(Running(grandchild));
  const auto killed = ReapLeftoverChildren(file, 5s);
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_EQ(killed[0], "sh (process group " + std::to_string(child) + ", 1 process)");
  EXPECT_FALSE(Running(grandchild));
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST_F(ChildRecordTest, AProcessThatOnlyReusesARecordedNumberIsLeftAlone) {
  const pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    ::setpgid(0, 0);
    ::execlp("sleep", "sleep", "300", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(WaitUntil([&] { return ::getpgid(other) == other; }, 2s));
  const std::string start = StartTime(other);
  const auto file = tmp_ / "children";
  // Same number, another start time; the right start time but another boot.
  WriteFileAtomic(file,
                  std::to_string(other) + " " + std::to_string(std::stoull(start) + 1) + " " +
                      BootId() + " skopeo\n" + std::to_string(other) + " " + start +
                      " 00000000-0000-0000-0000-000000000000 skopeo\n" + "garbage line\n",
                  0600);
  EXPECT_TRUE(ReapLeftoverChildren(file, 1s).empty());
  EXPECT_TRUE(Running(other));
  ::kill(other, SIGKILL);
  ::waitpid(other, nullptr, 0);
}

}  // namespace
}  // namespace lca
