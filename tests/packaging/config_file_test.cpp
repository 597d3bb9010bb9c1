// The shipped /etc/lca/lifecycle-agent.yaml (systemd/lifecycle-agent.yaml): it must load as
// shipped and change nothing, every example line must load once uncommented and show the
// built-in default, and it must mention every key the loader knows, so a new key cannot be
// left out of the file unnoticed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "agent/daemon/config.hpp"
#include "agent/pivot/reboot.hpp"
#include "common/error.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;

const fs::path kShipped = fs::path(LCA_TEST_SOURCE_DIR) / "systemd/lifecycle-agent.yaml";

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lca-config-file-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  fs::path dir_;
};

// "# key: value" lines become "key: value"; prose comments stay comments.
std::string Uncomment(const std::string& text, std::set<std::string>* keys) {
  static const std::regex kExample(R"(^# ([A-Za-z]+): (.*)$)");
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kExample)) {
      keys->insert(m[1]);
      line = m[1].str() + ": " + m[2].str();
    }
    out += line + "\n";
  }
  return out;
}

// The loader names every key it knows when it meets an unknown one.
std::set<std::string> KnownKeys(const fs::path& file) {
  try {
    LoadConfigFile(file, DaemonConfig{});
  } catch (const Error& e) {
    const std::string what = e.what();
    const auto open = what.find("(known: ");
    const auto close = what.find(')', open);
    if (open == std::string::npos || close == std::string::npos) return {};
    std::set<std::string> keys;
    std::istringstream list(what.substr(open + 8, close - open - 8));
    for (std::string k; std::getline(list, k, ',');) {
      k.erase(0, k.find_first_not_of(' '));
      keys.insert(k);
    }
    return keys;
  }
  return {};
}

TEST_F(ConfigFileTest, ShippedFileLoadsAndChangesNothing) {
  ASSERT_TRUE(fs::exists(kShipped)) << kShipped;
  const DaemonConfig def;
  const DaemonConfig cfg = LoadConfigFile(kShipped, def);
  EXPECT_EQ(cfg.sysroot, def.sysroot);
  EXPECT_EQ(cfg.state_dir, def.state_dir);
  EXPECT_EQ(cfg.socket, def.socket);
  EXPECT_EQ(cfg.socket_mode, def.socket_mode);
  EXPECT_EQ(cfg.config_dir, def.config_dir);
  EXPECT_EQ(cfg.registries_conf, def.registries_conf);
  EXPECT_TRUE(cfg.reboot_command.empty());
  EXPECT_EQ(cfg.precache_concurrency, def.precache_concurrency);
}

TEST_F(ConfigFileTest, EveryExampleLoadsUncommentedAndShowsTheDefault) {
  std::set<std::string> keys;
  const fs::path file = Write("uncommented.yaml", Uncomment(Read(kShipped), &keys));
  ASSERT_GT(keys.size(), 10u) << "the example lines are no longer '# key: value'";
  DaemonConfig cfg;
  ASSERT_NO_THROW(cfg = LoadConfigFile(file, DaemonConfig{})) << Read(file);

  // Keys with a built-in default show exactly that default.
  const DaemonConfig def;
  EXPECT_EQ(cfg.sysroot, def.sysroot);
  EXPECT_EQ(cfg.state_dir, def.state_dir);
  EXPECT_EQ(cfg.socket, def.socket);
  EXPECT_EQ(cfg.socket_mode, def.socket_mode);
  EXPECT_EQ(cfg.proc_cmdline, def.proc_cmdline);
  EXPECT_EQ(cfg.config_dir, def.config_dir);
  EXPECT_EQ(cfg.log_level, def.log_level);
  EXPECT_EQ(cfg.node_pull_secret, def.node_pull_secret);
  EXPECT_EQ(cfg.containers_root, def.containers_root);
  EXPECT_EQ(cfg.precache_concurrency, def.precache_concurrency);
  EXPECT_EQ(cfg.precache_timeout_seconds, def.precache_timeout_seconds);
  EXPECT_EQ(cfg.precache_best_effort, def.precache_best_effort);
  EXPECT_EQ(cfg.precache_disabled, def.precache_disabled);
  EXPECT_EQ(cfg.hook_timeout_seconds, def.hook_timeout_seconds);
  EXPECT_EQ(cfg.systemctl_command, def.systemctl_command);
  // Unset by default, with the effective value shown: hooks under the config dir, and the
  // reboot command the daemon falls back to.
  EXPECT_EQ(cfg.hooks_dir, def.config_dir / "hooks");
  EXPECT_EQ(cfg.reboot_command, pivot::DefaultRebootCommand());
}

TEST_F(ConfigFileTest, MentionsEveryKeyTheLoaderKnows) {
  std::set<std::string> shown;
  Uncomment(Read(kShipped), &shown);
  const auto known = KnownKeys(Write("unknown.yaml", "noSuchKeyForTheTest: 1\n"));
  ASSERT_GT(known.size(), 10u) << "the loader's unknown-key message no longer lists the keys";
  for (const auto& k : known) {
    EXPECT_TRUE(shown.count(k)) << "systemd/lifecycle-agent.yaml does not show key '" << k
                                << "' (add a commented '# " << k << ": <default>' line)";
  }
  for (const auto& k : shown) {
    EXPECT_TRUE(known.count(k)) << "systemd/lifecycle-agent.yaml shows '" << k
                                << "', which the loader does not know";
  }
}

TEST_F(ConfigFileTest, UncommentingRejectsABadValueSoTheLoadIsReal) {
  // The uncommented file is really parsed: the same text with one bad value fails.
  std::set<std::string> keys;
  std::string text = Uncomment(Read(kShipped), &keys);
  const auto pos = text.find("precacheConcurrency: 10");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 23, "precacheConcurrency: -1");
  EXPECT_THROW(LoadConfigFile(Write("bad.yaml", text), DaemonConfig{}), Error);
}

}  // namespace
}  // namespace lca
