// lcactl must-gather against a real lifecycle-agent on a throwaway ostree host: every member is
// a regular file with a safe relative name, the expected members are there, and no secret of
// the pull secret (nor its base64 forms) appears anywhere; without the daemon the object comes
// from the state dir.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca {
namespace {
namespace fs = std::filesystem;

constexpr const char* kSecret = "S3cr3t-MG-7f1c9a";
constexpr const char* kUserPass = "mguser:S3cr3t-MG-7f1c9a";

struct Member {
  std::string data;
  bool regular = false;
};

// Every entry of the archive by name, read with libarchive.
std::map<std::string, Member> ReadArchive(const fs::path& file) {
  std::map<std::string, Member> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, file.c_str(), 65536) != ARCHIVE_OK) {
    ADD_FAILURE() << "opening " << file << ": " << archive_error_string(a);
    archive_read_free(a);
    return out;
  }
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Member m;
    m.regular = archive_entry_filetype(e) == AE_IFREG;
    char buf[8192];
    for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;) {
      m.data.append(buf, static_cast<size_t>(n));
    }
    out[archive_entry_pathname(e)] = m;
  }
  archive_read_free(a);
  return out;
}

class MustGatherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<test::TestSysroot>(tmp_ / "host");
    fs::create_directories(tmp_ / "etc/secrets/seed-pull-secret");
    fs::create_directories(tmp_ / "state/workspace");
    fs::create_directories(tmp_ / "containers");
    const Json pull = {{"auths",
                        {{"registry.example.com:5000",
                          {{"auth", Base64Encode(kUserPass)},
                           {"identitytoken", std::string(kSecret) + "-idtok"},
                           {"email", "ops@example.com"}}}}}};
    WriteFileAtomic(tmp_ / "etc/secrets/seed-pull-secret/.dockerconfigjson", pull.dump(), 0600);
    // What Prep leaves in the workspace while it pulls: never to be collected.
    WriteFileAtomic(tmp_ / "state/workspace/seed-pull-secret", pull.dump(), 0600);
    WriteFileAtomic(tmp_ / "state/workspace/precache_status.json",
                    R"({"total":3,"pulled":1,"failed":0,"failed_pulls":null})", 0600);
    StepJournal journal(tmp_ / "state");
    journal.Start("prep.fetch");
    journal.Done("prep.fetch");
    // A config with a token in it (YAML), as a careless operator might write one.
    WriteFileAtomic(tmp_ / "etc/lifecycle-agent.yaml",
                    std::string("logLevel: info\nregistryToken: ") + kSecret + "\n", 0600);
    WriteFileAtomic(tmp_ / "none.yaml", "", 0644);
  }

  void StartDaemon() {
    daemon_ = std::make_unique<test::ChildProcess>();
    daemon_->Start({test::kDaemonBin, "--state-dir", (tmp_ / "state").string(), "--socket",
                    Socket(), "--sysroot", host_->sysroot().string(), "--proc-cmdline",
                    host_->cmdline_file().string(), "--config-dir", (tmp_ / "etc").string(),
                    "--config", (tmp_ / "none.yaml").string(), "--log-level", "debug"},
                   {}, (tmp_ / "daemon.log").string());
    for (int i = 0; i < 250; ++i) {
      if (Ctl({"get", "ibu", "-o", "name"}).code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "daemon did not come up: " << ReadFileIfExists(tmp_ / "daemon.log").value_or("");
  }
  void StopDaemon() {
    daemon_->Signal(SIGTERM);
    ASSERT_TRUE(daemon_->Wait(std::chrono::seconds(10)).has_value());
    daemon_.reset();
  }
  std::string Socket() const { return (tmp_ / "run/lca.sock").string(); }

  test::CtlResult Ctl(const std::vector<std::string>& args) {
    ProcessSpec spec;
    spec.argv = {test::kCtlBin, "--socket", Socket()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(60);
    spec.stderr_tail_bytes = 1 << 16;
    SystemProcessRunner runner;
    const auto r = runner.Run(spec);
    return {r.exit_code, r.stdout_data, r.stderr_tail};
  }

  std::map<std::string, Member> Gather(const fs::path& out) {
    const auto r = Ctl(
        {"must-gather", "-o", out.string(), "--state-dir", (tmp_ / "state").string(), "--sysroot",
         host_->sysroot().string(), "--config", (tmp_ / "etc/lifecycle-agent.yaml").string(),
         "--config-dir", (tmp_ / "etc").string(), "--containers-root",
         (tmp_ / "containers").string(), "--log-file", (tmp_ / "daemon.log").string()});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "must-gather written to " + out.string() + "\n");
    struct stat st {};
    EXPECT_EQ(::stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    return Members(out);
  }

  // The archive's members by name, without the "must-gather-<stamp>/" directory, after
  // checking each entry.
  static std::map<std::string, Member> Members(const fs::path& out) {
    auto members = ReadArchive(out);
    std::map<std::string, Member> by_name;
    for (const auto& [name, m] : members) {
      EXPECT_TRUE(m.regular) << name;
      EXPECT_EQ(name.rfind("must-gather-", 0), 0u) << name;
      EXPECT_EQ(name.find(".."), std::string::npos) << name;
      EXPECT_NE(name.front(), '/') << name;
      const auto slash = name.find('/');
      EXPECT_NE(slash, std::string::npos) << name;
      by_name[name.substr(slash + 1)] = m;
    }
    return by_name;
  }

  static void ExpectNoSecret(const std::map<std::string, Member>& members) {
    const std::vector<std::string> forbidden = {
        kSecret, Base64Encode(kUserPass), Base64Encode(kSecret),
        // base64 of the secret at the other two alignments inside a longer string
        Base64Encode(std::string("x") + kSecret).substr(4, 12),
        Base64Encode(std::string("xy") + kSecret).substr(4, 12)};
    for (const auto& [name, m] : members) {
      for (const auto& f : forbidden) {
        EXPECT_EQ(m.data.find(f), std::string::npos) << name << " holds '" << f << "':\n" << m.data;
      }
    }
  }

  test::TempDir tmp_{"lca-must-gather"};
  std::unique_ptr<test::TestSysroot> host_;
  std::unique_ptr<test::ChildProcess> daemon_;
};

TEST_F(MustGatherTest, CollectsEverythingAndNoSecret) {
  StartDaemon();
  auto r = Ctl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p",
       R"({"spec":{"seedImageRef":{"version":"4.15.2","image":"registry.example.com:5000/seed:4.15.2","pullSecretRef":{"name":"seed-pull-secret"}}}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  // A log holding credentials the way a careless hook or a verbose tool might print them.
  {
    std::string log = ReadFileIfExists(tmp_ / "daemon.log").value_or("");
    log += std::string("hook output: Authorization: Bearer ") + kSecret + "\n";
    log += std::string("hook output: {\"auth\": \"") + Base64Encode(kUserPass) + "\"}\n";
    log += std::string("hook output: password: ") + kSecret + "\n";
    WriteFileAtomic(tmp_ / "hook.log", log, 0600);
  }
  // The daemon keeps writing its log: gather from a copy with the extra lines.
  const auto members = [&] {
    fs::rename(tmp_ / "hook.log", tmp_ / "daemon.log");
    return Gather(tmp_ / "out.tar.gz");
  }();
  for (const char* want : {"summary.txt", "object.json", "metrics.txt", "step-journal.json",
                           "state-dir.txt", "precache-status.json", "daemon.log", "deployments.txt",
                           "disk-usage.txt", "config/lifecycle-agent.yaml", "config-dir.txt"}) {
    EXPECT_EQ(members.count(want), 1u) << want << " missing; have:\n"
                                       << ::testing::PrintToString(members.size());
  }
  ExpectNoSecret(members);

  const Json obj = ParseJson(members.at("object.json").data, "object.json");
  EXPECT_EQ(obj["spec"]["seedImageRef"]["pullSecretRef"]["name"], "seed-pull-secret");
  EXPECT_NE(members.at("summary.txt").data.find("object.json: from lifecycle-agent"),
            std::string::npos);
  EXPECT_NE(members.at("step-journal.json").data.find("prep.fetch"), std::string::npos);
  EXPECT_NE(members.at("precache-status.json").data.find("\"total\": 3"), std::string::npos);
  EXPECT_NE(members.at("deployments.txt").data.find(host_->commit()), std::string::npos)
      << members.at("deployments.txt").data;
  EXPECT_NE(members.at("disk-usage.txt").data.find("sysroot " + host_->sysroot().string()),
            std::string::npos);
  EXPECT_NE(members.at("disk-usage.txt").data.find("containers-storage"), std::string::npos);
  EXPECT_NE(members.at("metrics.txt").data.find("lca_stage{stage=\"Idle\"} 1"), std::string::npos);
  EXPECT_NE(members.at("config/lifecycle-agent.yaml").data.find("registryToken: REDACTED"),
            std::string::npos);
  // Secrets are listed by name only; the workspace's transient secret by name only too.
  EXPECT_NE(members.at("config-dir.txt").data.find("secrets/seed-pull-secret/"), std::string::npos);
  EXPECT_EQ(members.at("config-dir.txt").data.find(".dockerconfigjson"), std::string::npos);
  EXPECT_NE(members.at("state-dir.txt").data.find("workspace/seed-pull-secret"), std::string::npos);
  const std::string& log = members.at("daemon.log").data;
  if (members.at("summary.txt").data.find("daemon.log: the last") != std::string::npos) {
    EXPECT_NE(log.find("Authorization: REDACTED"), std::string::npos) << log;
    EXPECT_NE(log.find("\"auth\": \"REDACTED\""), std::string::npos) << log;
    EXPECT_NE(log.find("lifecycle-agent"), std::string::npos);
  }
  StopDaemon();
}

TEST_F(MustGatherTest, WithoutTheDaemonTheObjectComesFromTheStateDir) {
  StartDaemon();  // writes ibu.json
  StopDaemon();
  const auto members = Gather(tmp_ / "offline.tar.gz");
  ASSERT_EQ(members.count("object.json"), 1u);
  EXPECT_EQ(ParseJson(members.at("object.json").data, "object.json")["metadata"]["name"],
            "upgrade");
  const std::string& summary = members.at("summary.txt").data;
  EXPECT_NE(summary.find("did not answer"), std::string::npos) << summary;
  EXPECT_NE(summary.find("object.json: " + (tmp_ / "state/ibu.json").string()), std::string::npos)
      << summary;
  EXPECT_EQ(members.count("metrics.txt"), 0u);
  EXPECT_EQ(members.count("deployments.txt"), 1u);
  ExpectNoSecret(members);
}

TEST_F(MustGatherTest, GathersWhereTheRunningDaemonKeepsItsFiles) {
  StartDaemon();
  // No path flags: the daemon says where its state dir, sysroot and config are.
  const fs::path out = tmp_ / "daemon-paths.tar.gz";
  auto r = Ctl({"must-gather", "-o", out.string(), "--log-file", (tmp_ / "daemon.log").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  auto members = Members(out);
  const std::string& summary = members.at("summary.txt").data;
  EXPECT_NE(summary.find("paths: from lifecycle-agent's /lca/v1/paths (flags given win): state "
                         "dir " +
                         (tmp_ / "state").string() + ", sysroot " + host_->sysroot().string() +
                         ", config dir " + (tmp_ / "etc").string() + "\n"),
            std::string::npos)
      << summary;
  ASSERT_EQ(members.count("step-journal.json"), 1u) << summary;
  EXPECT_NE(members.at("step-journal.json").data.find("prep.fetch"), std::string::npos);
  EXPECT_EQ(members.count("config/none.yaml"), 1u) << summary;
  EXPECT_NE(members.at("deployments.txt").data.find(host_->sysroot().string()), std::string::npos);
  EXPECT_NE(members.at("state-dir.txt").data.find("workspace/precache_status.json"),
            std::string::npos);
  ExpectNoSecret(members);

  // A flag given wins over the daemon's answer.
  fs::create_directories(tmp_ / "elsewhere");
  r = Ctl({"must-gather", "-o", out.string(), "--state-dir", (tmp_ / "elsewhere").string(),
           "--log-file", (tmp_ / "daemon.log").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  members = Members(out);
  EXPECT_NE(members.at("summary.txt").data.find("state dir " + (tmp_ / "elsewhere").string()),
            std::string::npos)
      << members.at("summary.txt").data;
  EXPECT_EQ(members.count("step-journal.json"), 0u);

  // Without the daemon: a warning, and the defaults or the flags given.
  StopDaemon();
  r = Ctl({"must-gather", "-o", out.string(), "--state-dir", (tmp_ / "state").string(), "--sysroot",
           host_->sysroot().string(), "--config-dir", (tmp_ / "etc").string(), "--config",
           (tmp_ / "none.yaml").string(), "--containers-root", (tmp_ / "containers").string(),
           "--log-file", (tmp_ / "daemon.log").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: could not ask lifecycle-agent for its paths (cannot reach "
                       "lifecycle-agent at " +
                       Socket()),
            std::string::npos)
      << r.err;
  members = Members(out);
  EXPECT_NE(members.at("summary.txt").data.find("paths: from lcactl's defaults and flags"),
            std::string::npos);
}

}  // namespace
}  // namespace lca
