// lifecycle-agent's config file and lcactl's completion script.
#include <gtest/gtest.h>

#include "agent/cli/app.hpp"
#include "agent/cli/commands.hpp"
#include "agent/cli/completion.hpp"
#include "agent/daemon/config.hpp"
#include "agent/daemon/daemon.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

TEST(DaemonConfig, DefaultsAreTheDocumentedHostPaths) {
  DaemonConfig cfg;
  EXPECT_EQ(cfg.sysroot, "/");
  EXPECT_EQ(cfg.state_dir, "/var/lib/lca");
  EXPECT_EQ(cfg.socket, "/run/lca/lca.sock");
  EXPECT_EQ(cfg.socket_mode, 0600u);
  EXPECT_EQ(cfg.proc_cmdline, "/proc/cmdline");
  EXPECT_EQ(cfg.config_dir, "/etc/lca");
}

TEST(DaemonConfig, FileOverridesDefaults) {
  test::TempDir tmp;
  WriteFileAtomic(tmp / "c.yaml",
                  "sysroot: /mnt/sysroot\nstateDir: /tmp/s\nsocket: /tmp/s.sock\nsocketMode: "
                  "\"0660\"\nprocCmdline: /tmp/cmdline\nconfigDir: /tmp/etc\ncontainersRoot: "
                  "/tmp/c\nlogLevel: debug\nlogFormat: human\n",
                  0644);
  const DaemonConfig cfg = LoadConfigFile(tmp / "c.yaml", DaemonConfig{});
  EXPECT_EQ(cfg.sysroot, "/mnt/sysroot");
  EXPECT_EQ(cfg.state_dir, "/tmp/s");
  EXPECT_EQ(cfg.socket_mode, 0660u);
  EXPECT_EQ(cfg.containers_root, "/tmp/c");
  EXPECT_EQ(cfg.log_level, "debug");
  EXPECT_EQ(cfg.log_format, "human");
}

TEST(DaemonConfig, RealHostSettings) {
  test::TempDir tmp;
  EXPECT_FALSE(DaemonConfig{}.has_proxy.has_value()) << "unset: /etc/mco/proxy.env decides";
  EXPECT_EQ(DaemonConfig{}.selinuxfs, "/sys/fs/selinux");
  WriteFileAtomic(tmp / "c.yaml", "hasProxy: true\nselinuxfs: /tmp/selinux\n", 0644);
  const DaemonConfig cfg = LoadConfigFile(tmp / "c.yaml", DaemonConfig{});
  EXPECT_EQ(cfg.has_proxy, std::optional<bool>(true));
  EXPECT_EQ(cfg.selinuxfs, "/tmp/selinux");
  WriteFileAtomic(tmp / "bad.yaml", "hasProxy: sometimes\n", 0644);
  try {
    LoadConfigFile(tmp / "bad.yaml", DaemonConfig{});
    ADD_FAILURE() << "accepted hasProxy: sometimes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hasProxy: must be true or false"), std::string::npos)
        << e.what();
  }
}

TEST(DaemonConfig, EmptyFileChangesNothing) {
  test::TempDir tmp;
  WriteFileAtomic(tmp / "c.yaml", "", 0644);
  EXPECT_EQ(LoadConfigFile(tmp / "c.yaml", DaemonConfig{}).state_dir, "/var/lib/lca");
}

TEST(DaemonConfig, BadFilesNameTheFileAndKey) {
  test::TempDir tmp;
  auto err = [&](const std::string& text) {
    WriteFileAtomic(tmp / "c.yaml", text, 0644);
    try {
      LoadConfigFile(tmp / "c.yaml", DaemonConfig{});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string file = (tmp / "c.yaml").string();
  EXPECT_EQ(err("stateDirr: /x\n").rfind(file + ": unknown key 'stateDirr'", 0), 0u);
  EXPECT_EQ(err("socketMode: rw\n"), file + ": socketMode: 'rw' is not an octal mode like 0600");
  EXPECT_NE(err("sysroot: [a, b]\n").find("sysroot: must be a string"), std::string::npos);
  EXPECT_NE(err("- a\n- b\n").find("must be a YAML mapping"), std::string::npos);
  EXPECT_EQ(err("logFormat: fancy\n"),
            file + ": logFormat: log format 'fancy' is not one of auto, stderr, journal, human");
  EXPECT_NE(err("a: [\n").find("invalid YAML"), std::string::npos);
  EXPECT_THROW(LoadConfigFile(tmp / "missing.yaml", DaemonConfig{}), Error);
}

TEST(DaemonConfig, ParseMode) {
  EXPECT_EQ(ParseMode("0600", "m"), 0600u);
  EXPECT_EQ(ParseMode("600", "m"), 0600u);
  EXPECT_EQ(ParseMode("0o666", "m"), 0666u);
  EXPECT_THROW(ParseMode("0800", "m"), Error);
  EXPECT_THROW(ParseMode("", "m"), Error);
}

TEST(NotifyStatus, OneLineWithStageAndLastCondition) {
  api::ImageBasedUpgrade ibu = api::NewDefault(Now(), "u");
  EXPECT_EQ(NotifyStatusLine(ibu), "stage=Idle");
  ibu.status = api::Status{};
  ibu.status->conditions.push_back(
      {"PrepInProgress", "False", 1, Now(), "Failed", "pull failed:\nmanifest unknown"});
  EXPECT_EQ(NotifyStatusLine(ibu), "stage=Idle state=Failed: pull failed: manifest unknown");
}

TEST(Completion, BashScriptParsesAndRegistersLcactl) {
  test::TempDir tmp;
  cli::Lcactl lcactl;
  WriteFileAtomic(tmp / "lcactl.bash", cli::BashCompletion(lcactl.app()), 0644);
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = {"bash", "-c",
               "source \"$1\" && complete -p lcactl && COMP_WORDS=(lcactl ge) COMP_CWORD=1 && "
               "_lcactl && echo \"${COMPREPLY[*]}\" && COMP_WORDS=(lcactl get ibu '') "
               "COMP_CWORD=3 && _lcactl && echo \"${COMPREPLY[*]}\"",
               "bash", (tmp / "lcactl.bash").string()};
  const auto r = RunChecked(runner, spec);
  EXPECT_NE(r.stdout_data.find("complete -F _lcactl lcactl"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("\nget\n"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("\nupgrade\n"), std::string::npos) << r.stdout_data;
}

}  // namespace
}  // namespace lca
