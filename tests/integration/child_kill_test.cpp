// kill -9 of the real daemon while skopeo fetches the seed, and a restart right after: the old
// skopeo must not outlive its daemon (it would go on writing into the layout the resumed Prep
// removes and fetches again), and the resumed Prep completes.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/agent_host.hpp"
#include "tests/support/throttled_proxy.hpp"

namespace lca {
namespace {

using namespace std::chrono_literals;
using test::AgentHost;

struct Proc {
  pid_t pid;
  std::string start;  // field 22 of /proc/<pid>/stat
};

std::optional<std::string> StatField(pid_t pid, int field, char* state = nullptr) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto paren = line.rfind(')');
  std::istringstream fields(line.substr(paren + 2));
  std::string f;
  for (int i = 3; i <= field && fields >> f; ++i) {
    if (i == 3 && state != nullptr) *state = f[0];
  }
  return f;
}

// The same process (pid and start time), alive and not a zombie.
bool StillRunning(const Proc& p) {
  char state = '?';
  const auto start = StatField(p.pid, 22, &state);
  return start && *start == p.start && state != 'Z';
}

// A `skopeo copy` whose parent is `parent`.
std::optional<Proc> SkopeoCopyOf(pid_t parent) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (StatField(pid, 4) != std::to_string(parent)) continue;
    const std::string cmdline = ReadFileIfExists(e.path() / "cmdline").value_or("");
    if (cmdline.rfind("skopeo", 0) != 0 && cmdline.find("/skopeo") == std::string::npos) continue;
    if (cmdline.find(std::string("\0copy\0", 6)) == std::string::npos) continue;
    if (auto start = StatField(pid, 22)) return Proc{pid, *start};
  }
  return std::nullopt;
}

class ChildKillTest : public test::SeedBedSuite {
 protected:
  void TearDown() override {
    if (HasFailure() && host_) std::cerr << "---- daemon log ----\n" << host_->DaemonLog();
    host_.reset();
  }
  test::TempDir tmp_{"lca-child-kill"};
  std::unique_ptr<AgentHost> host_;
};

TEST_F(ChildKillTest, SkopeoDoesNotOutliveAKilledDaemonAndTheRestartedPrepCompletes) {
  // The seed comes through a proxy slow enough to catch skopeo mid-copy: the bed's seed is about
  // 12 KB as sent, so at 1 KB/s the copy takes seconds.
  test::ThrottledProxy proxy(bed->registry->address(), 1024);
  WriteFileAtomic(tmp_ / "registries.conf",
                  "[[registry]]\nlocation = \"" + proxy.address() + "\"\ninsecure = true\n", 0644);
  host_ = std::make_unique<AgentHost>(tmp_ / "host", *bed);
  host_->SetRegistriesConf(tmp_ / "registries.conf");
  host_->Start();
  const pid_t first = host_->DaemonPid();
  const std::string image = proxy.address() + "/ibu/seed:" + test::SeedBed::kVersion;
  host_->Patch({{"spec",
                 {{"stage", "Prep"},
                  {"seedImageRef", {{"version", test::SeedBed::kVersion}, {"image", image}}}}}});

  // What validating the seed (skopeo inspect) took, so the kill comes inside the copy.
  std::size_t sent_before_copy = 0;
  std::optional<Proc> skopeo;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!skopeo) {
      skopeo = SkopeoCopyOf(first);
      sent_before_copy = proxy.sent();
    } else if (proxy.sent() > sent_before_copy + 2048) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(skopeo.has_value()) << "no skopeo copy under the daemon";
  ASSERT_TRUE(StillRunning(*skopeo)) << "the fetch ended before the kill: slow the proxy down";

  ::kill(first, SIGKILL);
  while (host_->Running() && !host_->Exited()) std::this_thread::sleep_for(5ms);
  host_->Start();  // right after, as systemd's Restart= would
  EXPECT_FALSE(StillRunning(*skopeo)) << "skopeo " << skopeo->pid << " outlived its killed daemon";

  proxy.SetRate(0);
  const Json o = host_->WaitFor(
      [](const Json& obj) { return AgentHost::ConditionStatus(obj, "PrepCompleted") == "True"; },
      "PrepCompleted", 300s);
  EXPECT_EQ(AgentHost::ConditionStatus(o, "PrepInProgress"), "False");
  EXPECT_EQ(host_->DaemonLog().find("Directory not empty"), std::string::npos);
}

}  // namespace
}  // namespace lca
