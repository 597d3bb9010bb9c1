// The real lifecycle-agent binary on a temp state dir and socket, driven with the real lcactl
// binary only, as an operator would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "agent/client/unix_http_client.hpp"
#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

const std::string kDaemon = std::string(LCA_TEST_BINARY_DIR) + "/agent/daemon/lifecycle-agent";
const std::string kCtl = std::string(LCA_TEST_BINARY_DIR) + "/agent/cli/lcactl";

struct CtlResult {
  int code;
  std::string out, err;
};

class DaemonCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Other users must reach the socket's directory for the non-root tests.
    ::chmod(tmp_.path().c_str(), 0755);
    WriteFileAtomic(tmp_ / "cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda4 rw\n", 0644);
  }

  std::string Socket() const { return (tmp_ / "run/lca.sock").string(); }
  std::filesystem::path StateFile() const { return tmp_ / "state/ibu.json"; }

  void StartDaemon(std::map<std::string, std::string> env = {},
                   std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kDaemon,
                                     "--state-dir",
                                     (tmp_ / "state").string(),
                                     "--socket",
                                     Socket(),
                                     "--sysroot",
                                     (tmp_ / "sysroot").string(),
                                     "--proc-cmdline",
                                     (tmp_ / "cmdline").string(),
                                     "--config",
                                     (tmp_ / "none.yaml").string(),
                                     "--log-level",
                                     "debug"};
    WriteFileAtomic(tmp_ / "none.yaml", "", 0644);
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<test::ChildProcess>();
    daemon_->Start(argv, env, (tmp_ / "daemon.log").string());
    // Ready when the API answers.
    for (int i = 0; i < 250; ++i) {
      if (Ctl({"get", "ibu", "-o", "name"}).code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "daemon did not come up; log:\n"
           << ReadFileIfExists(tmp_ / "daemon.log").value_or("");
  }

  int StopDaemon() {
    daemon_->Signal(SIGTERM);
    auto st = daemon_->Wait(std::chrono::seconds(10));
    EXPECT_TRUE(st.has_value()) << "daemon did not stop on SIGTERM";
    return st ? *st : -1;
  }

  CtlResult Ctl(std::vector<std::string> args, std::optional<std::string> as_user = std::nullopt) {
    ProcessSpec spec;
    if (as_user) {
      spec.argv = {"setpriv", "--reuid=" + *as_user, "--regid=" + *as_user, "--clear-groups"};
    }
    spec.argv.push_back(kCtl);
    spec.argv.push_back("--socket");
    spec.argv.push_back(Socket());
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(30);
    spec.stderr_tail_bytes = 1 << 16;
    auto r = runner_.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }

  Json Object() {
    auto r = Ctl({"get", "ibu", "upgrade", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return Json::parse(r.out);
  }

  // Waits until the agent has processed the last change (observedGeneration caught up).
  Json Settled() {
    for (int i = 0; i < 250; ++i) {
      Json o = Object();
      if (o["status"].value("observedGeneration", 0) == o["metadata"].value("generation", 0)) {
        return o;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "agent did not catch up";
    return Object();
  }

  test::TempDir tmp_{"lca-it"};
  SystemProcessRunner runner_;
  std::unique_ptr<test::ChildProcess> daemon_;
};

TEST_F(DaemonCliTest, FreshDaemonServesTheIdleObject) {
  StartDaemon();
  Json o = Settled();
  EXPECT_EQ(o["metadata"]["name"], "upgrade");
  EXPECT_EQ(o["spec"]["stage"], "Idle");
  EXPECT_EQ(o["status"]["validNextStages"], Json::parse(R"(["Prep"])"));
  ASSERT_EQ(o["status"]["conditions"].size(), 1u);
  EXPECT_EQ(o["status"]["conditions"][0]["type"], "Idle");
  EXPECT_EQ(o["status"]["conditions"][0]["status"], "True");

  auto table = Ctl({"get", "ibu"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.substr(0, table.out.find('\n')),
            "NAME      AGE   DESIRED STAGE   STATE   DETAILS");
  EXPECT_NE(table.out.find("upgrade   "), std::string::npos);
  EXPECT_NE(table.out.find("Idle            Idle    Idle"), std::string::npos) << table.out;

  auto yaml = Ctl({"get", "ibu", "upgrade", "-o", "yaml"});
  EXPECT_EQ(ParseYaml(yaml.out, "yaml"), o);

  auto status = Ctl({"status"});
  EXPECT_EQ(status.code, 0);
  EXPECT_NE(status.out.find("Valid next stages:"), std::string::npos) << status.out;

  auto version = Ctl({"version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_NE(version.out.find("Server Version: "), std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat(Socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(StateFile().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((tmp_ / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(WEXITSTATUS(StopDaemon()), 0);
}

TEST_F(DaemonCliTest, UpgradeFromIdleIsAnInvalidTransitionAndNothingElseChanges) {
  StartDaemon();
  const Json before = Settled();
  auto r =
      Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Upgrade"}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade patched\n");
  EXPECT_NE(r.err.find("Warning: spec.stage: \"Upgrade\" is not in status.validNextStages [Prep]"),
            std::string::npos)
      << r.err;
  auto w = Ctl({"wait", "ibu", "--for=condition=UpgradeInProgress=False", "--timeout=10s"});
  ASSERT_EQ(w.code, 0) << w.err;
  const Json after = Settled();
  const Json conds = after["status"]["conditions"];
  ASSERT_EQ(conds.size(), 2u);
  EXPECT_EQ(conds[0], before["status"]["conditions"][0]);  // Idle untouched
  EXPECT_EQ(conds[1]["type"], "UpgradeInProgress");
  EXPECT_EQ(conds[1]["status"], "False");
  EXPECT_EQ(conds[1]["reason"], "InvalidTransition");
  EXPECT_EQ(conds[1]["message"], "Previous stage not succeeded");
  EXPECT_EQ(after["status"]["validNextStages"], before["status"]["validNextStages"]);
  EXPECT_FALSE(after["status"].contains("history"));
  auto table = Ctl({"get", "ibu"});
  EXPECT_NE(table.out.find("Upgrade         InvalidTransition   Previous stage not succeeded"),
            std::string::npos)
      << table.out;
}

TEST_F(DaemonCliTest, BadRequestsAreRejectedClearlyAndStoreNothing) {
  StartDaemon();
  Settled();
  const std::string before = ReadFile(StateFile());
  struct Case {
    std::vector<std::string> args;
    std::string want_err;
  };
  const std::vector<Case> cases = {
      {{"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":)"},
       "error: unable to parse \"{\"spec\":{\"stage\":\": patch: invalid JSON"},
      {{"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Deploy"}})"},
       "Error from server (Invalid): ImageBasedUpgrade.lca.openshift.io \"upgrade\" is invalid: "
       "spec.stage: Unsupported value: \"Deploy\": supported values: \"Idle\", \"Prep\", "
       "\"Upgrade\", \"Rollback\""},
      {{"patch", "ibu", "other", "--type=merge", "-p", R"({"spec":{"stage":"Prep"}})"},
       "Error from server (NotFound): imagebasedupgrades.lca.openshift.io \"other\" not found"},
      {{"get", "ibu", "other"},
       "Error from server (NotFound): imagebasedupgrades.lca.openshift.io \"other\" not found"},
      {{"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"metadata":{"name":"other"}})"},
       "metadata.name: Invalid value: \"other\": ImageBasedUpgrade is a singleton and must be "
       "named 'upgrade'"},
      {{"patch", "ibu", "upgrade", "--type=merge", "-p",
        R"({"status":{"conditions":[{"type":"PrepCompleted","status":"True"}]}})"},
       "Error from server (Forbidden): imagebasedupgrades.lca.openshift.io \"upgrade\" is "
       "forbidden: status: is written by lifecycle-agent only; patch spec or metadata"},
      {{"patch", "ibu", "upgrade", "--type=merge", "-p",
        R"({"spec":{"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":-1}}})"},
       "spec.autoRollbackOnFailure.initMonitorTimeoutSeconds: Invalid value: -1: should be greater "
       "than or equal to 0"},
      {{"patch", "ibu", "upgrade", "--type=json", "-p", "[]"}, "use --type=merge"},
      {{"get", "pods"}, "error: the server doesn't have a resource type \"pods\""},
  };
  for (const auto& c : cases) {
    auto r = Ctl(c.args);
    EXPECT_EQ(r.code, 1) << c.args[0] << " " << c.args.back();
    EXPECT_NE(r.err.find(c.want_err), std::string::npos) << "stderr: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // Malformed JSON straight to the server, past lcactl's own check.
  http::UnixHttpClient client(Socket());
  auto reply = client.Request("PATCH", "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade",
                              "{\"spec\":", "application/merge-patch+json");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("\"reason\":\"BadRequest\""), std::string::npos) << reply.body;
  reply = client.Request("PATCH", "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade/status",
                         R"({"status":{}})", "application/merge-patch+json");
  EXPECT_EQ(reply.status, 403);
  reply = client.Request("POST", "/apis/lca.openshift.io/v1/imagebasedupgrades",
                         R"({"metadata":{"name":"second"}})", "application/json");
  EXPECT_EQ(reply.status, 422);
  EXPECT_NE(reply.body.find("must be named 'upgrade'"), std::string::npos);
  reply = client.Request("PATCH", "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade",
                         R"({"spec":{"stage":"Prep"}})", "application/json");
  EXPECT_EQ(reply.status, 415);

  EXPECT_EQ(ReadFile(StateFile()), before);
}

TEST_F(DaemonCliTest, NonRootCallersAreRefused) {
  StartDaemon();
  Settled();
  const std::string before = ReadFile(StateFile());
  // The socket is 0600: another user cannot even connect.
  auto r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Prep"}})"},
               "65534");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot reach lifecycle-agent at " + Socket()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  StopDaemon();

  // Even with the socket opened up, the peer's uid (SO_PEERCRED) is checked.
  StartDaemon({}, {"--socket-mode", "0666"});
  r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Prep"}})"},
          "65534");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Error from server (Forbidden): uid 65534 is not allowed to use the "
                       "lifecycle-agent API (root only)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(ReadFile(StateFile()), before);
}

TEST_F(DaemonCliTest, KilledMidWriteTheObjectIsIntactOnRestart) {
  StartDaemon();
  Settled();
  StopDaemon();
  const std::string before = ReadFile(StateFile());
  // The next write dies between the temp file and the rename, as SIGKILL or power loss would.
  StartDaemon({{"LCA_FAILPOINTS", "atomic-write.before-rename=crash"}});
  auto r = Ctl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p",
       R"({"spec":{"seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/seed:4.15.2"}}})"});
  EXPECT_EQ(r.code, 1);
  auto st = daemon_->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(WEXITSTATUS(*st), 137);
  EXPECT_EQ(ReadFile(StateFile()), before);
  bool temp_left = false;
  for (const auto& e : std::filesystem::directory_iterator(tmp_ / "state")) {
    temp_left = temp_left || e.path().filename().string().rfind(".ibu.json.tmp.", 0) == 0;
  }
  EXPECT_TRUE(temp_left) << "the crash should have hit between write and rename";

  StartDaemon();
  Json o = Settled();
  EXPECT_EQ(o["spec"]["seedImageRef"], Json::object());
  EXPECT_EQ(o["status"]["conditions"][0]["type"], "Idle");
  for (const auto& e : std::filesystem::directory_iterator(tmp_ / "state")) {
    EXPECT_NE(e.path().filename().string().rfind(".ibu.json.tmp.", 0), 0u)
        << "stale temp file kept";
  }
  // And it works normally afterwards.
  r = Ctl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p",
       R"({"spec":{"seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/seed:4.15.2"}}})"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(DaemonCliTest, SdNotifyReadyStatusAndStopping) {
  const std::string notify = (tmp_ / "notify.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  StartDaemon({{"NOTIFY_SOCKET", notify}, {"WATCHDOG_USEC", "400000"}});
  // WATCHDOG_PID is not set, so sd_watchdog_enabled() accepts WATCHDOG_USEC for any pid.
  std::string all;
  auto drain = [&](std::chrono::milliseconds for_how_long) {
    const auto end = std::chrono::steady_clock::now() + for_how_long;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) all += std::string(buf, static_cast<size_t>(n)) + "\n";
    }
  };
  drain(std::chrono::milliseconds(1200));
  EXPECT_NE(all.find("READY=1"), std::string::npos) << all;
  EXPECT_NE(all.find("STATUS=stage=Idle state=Idle: Idle"), std::string::npos) << all;
  EXPECT_NE(all.find("WATCHDOG=1"), std::string::npos) << all;
  EXPECT_EQ(WEXITSTATUS(StopDaemon()), 0);
  drain(std::chrono::milliseconds(300));
  EXPECT_NE(all.find("STOPPING=1"), std::string::npos) << all;
  ::close(fd);
}

TEST_F(DaemonCliTest, SecondInstanceOnTheSameStateDirRefuses) {
  StartDaemon();
  test::ChildProcess second;
  second.Start({kDaemon, "--state-dir", (tmp_ / "state").string(), "--socket",
                (tmp_ / "run/other.sock").string(), "--proc-cmdline", (tmp_ / "cmdline").string()},
               {}, (tmp_ / "second.log").string());
  auto st = second.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  const std::string log = ReadFile(tmp_ / "second.log");
  EXPECT_NE(
      log.find("another lifecycle-agent (pid " + std::to_string(daemon_->pid()) + ") is running"),
      std::string::npos)
      << log;
}

TEST_F(DaemonCliTest, AnnotateAndWaitBehaveLikeOc) {
  StartDaemon();
  Settled();
  auto r = Ctl({"annotate", "ibu", "upgrade", "lca.openshift.io/trigger-reconcile=1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade annotated\n");
  r = Ctl({"annotate", "ibu", "upgrade", "lca.openshift.io/trigger-reconcile=2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--overwrite is false"), std::string::npos) << r.err;
  r = Ctl({"annotate", "ibu/upgrade", "--overwrite", "lca.openshift.io/trigger-reconcile=2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Object()["metadata"]["annotations"]["lca.openshift.io/trigger-reconcile"], "2");
  r = Ctl({"annotate", "ibu", "upgrade", "lca.openshift.io/trigger-reconcile-"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(Object()["metadata"].contains("annotations"));

  r = Ctl({"wait", "ibu", "--for=condition=Idle", "--timeout=5s"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade condition met\n");
  const auto t0 = std::chrono::steady_clock::now();
  r = Ctl({"wait", "ibu", "upgrade", "--for=condition=PrepCompleted", "--timeout=1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: timed out waiting for the condition on imagebasedupgrades/upgrade"),
            std::string::npos)
      << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(DaemonCliTest, PrepOnAHostNotBootedFromOstreeFailsClearlyAndAbortReturnsToIdle) {
  StartDaemon();
  Settled();
  auto r = Ctl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p",
       R"({"spec":{"stage":"Prep","seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/seed:4.15.2"}}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Ctl({"wait", "ibu", "--for=condition=PrepCompleted=False", "--timeout=10s"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json o = Settled();
  EXPECT_EQ(o["status"]["conditions"].back()["message"],
            "failed to validate IBU spec: the host is not booted from ostree (no ostree= in " +
                (tmp_ / "cmdline").string() + ")");
  EXPECT_EQ(o["status"]["validNextStages"], Json::parse(R"(["Idle"])"));
  r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Idle"}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Ctl({"wait", "ibu", "--for=condition=Idle", "--timeout=10s"});
  ASSERT_EQ(r.code, 0) << r.err;
  o = Settled();
  EXPECT_EQ(o["status"]["conditions"].size(), 1u);
  EXPECT_FALSE(o["status"].contains("history"));
}

}  // namespace
}  // namespace lca
