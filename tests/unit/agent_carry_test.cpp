// The agent carried into the new stateroot (agent/pivot/agent_carry.hpp): what the booted
// deployment has and the seed lacks ends up where the new release's systemd finds and starts it,
// nothing the seed brings is overwritten, secrets stay behind, and a second run changes nothing.
#include "agent/pivot/agent_carry.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::pivot {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAgentUnit =
    "[Service]\nType=notify\nExecStart=/usr/bin/lifecycle-agent\n[Install]\n"
    "WantedBy=multi-user.target\n";
constexpr const char* kMonitorUnit =
    "[Service]\nExecStart=/usr/bin/lcactl init-monitor --monitor\n";

mode_t Mode(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// WriteFileAtomic wants the directory to exist.
void Put(const fs::path& p, const std::string& text, mode_t mode) {
  EnsureDir(p.parent_path(), 0755);
  WriteFileAtomic(p, text, mode);
}

class AgentCarry : public ::testing::Test {
 protected:
  void SetUp() override {
    // The booted release has the agent as the package installs it.
    Put(booted_ / "usr/bin/lifecycle-agent", "daemon-binary", 0755);
    Put(booted_ / "usr/bin/lcactl", "cli-binary", 0755);
    Put(booted_ / "usr/lib/systemd/system/lifecycle-agent.service", kAgentUnit, 0644);
    Put(booted_ / "usr/lib/systemd/system/lca-init-monitor.service", kMonitorUnit, 0644);
    Put(booted_ / "etc/lca/lifecycle-agent.yaml", "logLevel: debug\n", 0644);
    Put(booted_ / "etc/lca/configmaps/ns/cm.yaml", "kind: ConfigMap\n", 0640);
    Put(booted_ / "etc/lca/secrets/ns/pull.json", "{\"auths\":{\"x\":1}}", 0600);
    EnsureDir(new_dep_ / "usr/bin", 0755);
    EnsureDir(new_root_ / "var", 0755);
  }

  test::TempDir tmp_{"lca-carry"};
  fs::path booted_ = tmp_ / "deploy/rhcos/deploy/aaa.0";
  fs::path new_root_ = tmp_ / "deploy/rhcos_4.15.2";
  fs::path new_dep_ = new_root_ / "deploy/bbb.0";
};

TEST_F(AgentCarry, SeedWithoutTheAgentGetsBinariesUnitsAndConfig) {
  const auto report = CarryAgent(booted_, new_dep_, new_root_);
  EXPECT_FALSE(report.carried.empty());

  // Binaries go to the stateroot's /var, never into the deployment's hardlinked /usr.
  EXPECT_EQ(ReadFile(new_root_ / "var/lib/lca/bin/lifecycle-agent"), "daemon-binary");
  EXPECT_EQ(ReadFile(new_root_ / "var/lib/lca/bin/lcactl"), "cli-binary");
  EXPECT_EQ(Mode(new_root_ / "var/lib/lca/bin/lcactl"), 0755u);
  EXPECT_FALSE(fs::exists(new_dep_ / "usr/bin/lifecycle-agent"));

  // Units in /etc with ExecStart pointing at the carried binaries, and enabled.
  const fs::path units = new_dep_ / "etc/systemd/system";
  const std::string agent = ReadFile(units / "lifecycle-agent.service");
  EXPECT_NE(agent.find("ExecStart=/var/lib/lca/bin/lifecycle-agent\n"), std::string::npos);
  EXPECT_EQ(agent.find("/usr/bin/"), std::string::npos);
  EXPECT_NE(ReadFile(units / "lca-init-monitor.service")
                .find("ExecStart=/var/lib/lca/bin/lcactl init-monitor --monitor"),
            std::string::npos);
  for (const char* unit : {"lifecycle-agent.service", "lca-init-monitor.service"}) {
    const fs::path wants = units / "multi-user.target.wants" / unit;
    ASSERT_TRUE(fs::is_symlink(wants)) << unit;
    EXPECT_EQ(fs::read_symlink(wants), fs::path("/etc/systemd/system") / unit);
  }

  // Config file by file with its mode; the secrets stay on the old stateroot.
  EXPECT_EQ(ReadFile(new_dep_ / "etc/lca/lifecycle-agent.yaml"), "logLevel: debug\n");
  EXPECT_EQ(Mode(new_dep_ / "etc/lca/configmaps/ns/cm.yaml"), 0640u);
  EXPECT_FALSE(fs::exists(new_dep_ / "etc/lca/secrets"));
}

// The new stateroot's /var and the new deployment's /etc came from the seed: links it planted
// there to host directories are never written through.
TEST_F(AgentCarry, NeverWritesThroughALinkTheSeedPlanted) {
  const fs::path host_bin = tmp_ / "host/usr/local/bin";
  const fs::path host_units = tmp_ / "host/etc/systemd/system";
  EnsureDir(host_bin, 0755);
  EnsureDir(host_units, 0755);
  EnsureDir(new_root_ / "var/lib/lca", 0700);
  fs::create_directory_symlink(host_bin, new_root_ / "var/lib/lca/bin");
  try {
    CarryAgent(booted_, new_dep_, new_root_);
    ADD_FAILURE() << "carried through var/lib/lca/bin -> " << host_bin;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    EXPECT_NE(std::string(e.what()).find("refused: it is a symlink"), std::string::npos)
        << e.what();
  }
  fs::remove(new_root_ / "var/lib/lca/bin");
  EnsureDir(new_dep_ / "etc/systemd", 0755);
  fs::create_directory_symlink(host_units, new_dep_ / "etc/systemd/system");
  EXPECT_THROW(CarryAgent(booted_, new_dep_, new_root_), Error);
  EXPECT_TRUE(fs::is_empty(host_bin));
  EXPECT_TRUE(fs::is_empty(host_units));
}

TEST_F(AgentCarry, WhatTheSeedBringsIsKeptAndOnlyEnabled) {
  Put(new_dep_ / "usr/bin/lifecycle-agent", "newer-daemon", 0755);
  Put(new_dep_ / "usr/bin/lcactl", "newer-cli", 0755);
  const std::string newer_unit = std::string(kAgentUnit) + "# 4.15.2\n";
  Put(new_dep_ / "usr/lib/systemd/system/lifecycle-agent.service", newer_unit, 0644);
  Put(new_dep_ / "etc/lca/lifecycle-agent.yaml", "logLevel: info\n", 0644);

  CarryAgent(booted_, new_dep_, new_root_);

  EXPECT_FALSE(fs::exists(new_root_ / "var/lib/lca/bin"));
  EXPECT_EQ(ReadFile(new_dep_ / "usr/bin/lifecycle-agent"), "newer-daemon");
  // The seed's own unit is not copied to /etc, only enabled where it is.
  EXPECT_FALSE(fs::exists(new_dep_ / "etc/systemd/system/lifecycle-agent.service"));
  const fs::path wants = new_dep_ / "etc/systemd/system/multi-user.target.wants";
  EXPECT_EQ(fs::read_symlink(wants / "lifecycle-agent.service"),
            fs::path("/usr/lib/systemd/system/lifecycle-agent.service"));
  // The seed lacks the monitor unit: the booted one comes over unchanged (lcactl is the seed's).
  EXPECT_EQ(ReadFile(new_dep_ / "etc/systemd/system/lca-init-monitor.service"), kMonitorUnit);
  EXPECT_EQ(ReadFile(new_dep_ / "etc/lca/lifecycle-agent.yaml"), "logLevel: info\n");
}

TEST_F(AgentCarry, SecondRunChangesNothing) {
  CarryAgent(booted_, new_dep_, new_root_);
  const auto again = CarryAgent(booted_, new_dep_, new_root_);
  EXPECT_TRUE(again.carried.empty()) << again.carried.front();
}

TEST_F(AgentCarry, NothingInstalledNothingCarried) {
  fs::remove_all(booted_);
  EnsureDir(booted_, 0755);
  const auto report = CarryAgent(booted_, new_dep_, new_root_);
  EXPECT_TRUE(report.carried.empty());
  EXPECT_FALSE(fs::exists(new_dep_ / "etc/systemd/system"));
}

}  // namespace
}  // namespace lca::pivot
