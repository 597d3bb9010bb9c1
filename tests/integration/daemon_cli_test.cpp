// The real lifecycle-agent binary on a temp state dir and socket, driven with the real lcactl
// binary only, as an operator would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

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

  // A command line as a user types it (the docs' quoting, through /bin/sh), with `lcactl` the
  // binary under test on this daemon's socket.
  CtlResult Shell(const std::string& line) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c",
                 "lcactl() { \"$LCACTL\" --socket \"$LCA_SOCKET\" \"$@\"; }\n" + line};
    spec.env = {{"LCACTL", kCtl}, {"LCA_SOCKET", Socket()}};
    spec.timeout = std::chrono::seconds(60);
    spec.stderr_tail_bytes = 1 << 16;
    auto r = runner_.Run(spec);
    return CtlResult{r.exit_code, r.stdout_data, r.stderr_tail};
  }

  // A command that runs until stopped (get -w, status --watch), its stdout lines collected.
  class Watcher {
   public:
    Watcher(DaemonCliTest& t, std::vector<std::string> args) {
      spec_.argv = {kCtl, "--socket", t.Socket()};
      spec_.argv.insert(spec_.argv.end(), args.begin(), args.end());
      spec_.timeout = std::chrono::seconds(120);
      spec_.on_stdout_line = [this](const std::string& line) {
        std::lock_guard lock(mu_);
        lines_.push_back(line);
      };
      spec_.cancelled = [this] { return stop_.load(); };
      thread_ = std::thread([this] { result_ = runner_.Run(spec_); });
    }
    ~Watcher() { Stop(); }
    // Waits until `n` lines matching `pattern` have been printed.
    bool WaitForLines(const std::string& pattern, size_t n,
                      std::chrono::seconds timeout = std::chrono::seconds(20)) {
      const std::regex re(pattern);
      const auto end = std::chrono::steady_clock::now() + timeout;
      while (std::chrono::steady_clock::now() < end) {
        if (Count(re) >= n) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return false;
    }
    size_t Count(const std::regex& re) {
      std::lock_guard lock(mu_);
      return static_cast<size_t>(std::count_if(
          lines_.begin(), lines_.end(), [&](const auto& l) { return std::regex_search(l, re); }));
    }
    std::string Output() {
      std::lock_guard lock(mu_);
      std::string all;
      for (const auto& l : lines_) all += l + "\n";
      return all;
    }
    // Stops it; true when it was still running (it had not given up by itself).
    bool Stop() {
      if (!thread_.joinable()) return false;
      stop_ = true;
      thread_.join();
      return result_.cancelled;
    }
    const ProcessResult& result() const { return result_; }

   private:
    ProcessSpec spec_;
    SystemProcessRunner runner_;
    std::mutex mu_;
    std::vector<std::string> lines_;
    std::atomic<bool> stop_{false};
    ProcessResult result_;
    std::thread thread_;
  };

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

TEST_F(DaemonCliTest, TheProductDocsCommandsRunUnchanged) {
  StartDaemon();
  Settled();
  const std::string doc =
      ReadFile(std::string(LCA_TEST_SOURCE_DIR) + "/tests/fixtures/doc-commands.txt");
  std::istringstream in(doc);
  int ran = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    ASSERT_EQ(line.rfind("oc ", 0), 0u) << line;
    const std::string command = "lcactl " + line.substr(3);
    auto r = Shell(command);
    ++ran;
    ASSERT_EQ(r.code, 0) << command << "\n" << r.err;
    EXPECT_EQ(r.err.find("error"), std::string::npos) << command << "\n" << r.err;
    if (line.find(" patch ") != std::string::npos) {
      EXPECT_TRUE(std::regex_match(
          r.out,
          std::regex(
              R"(imagebasedupgrade\.lca\.openshift\.io/upgrade patched( \(no change\))?\n)")))
          << command << ": " << r.out;
      const std::string stage =
          std::regex_replace(line, std::regex(R"re(.*"stage": "([A-Za-z]+)".*)re"), "$1");
      EXPECT_EQ(Object()["spec"]["stage"], stage) << command;
    } else {
      const Json list = ParseYaml(r.out, command);
      EXPECT_EQ(list["kind"], "List") << r.out;
      ASSERT_EQ(list["items"].size(), 1u) << r.out;
      EXPECT_EQ(list["items"][0]["kind"], "ImageBasedUpgrade");
      EXPECT_EQ(list["items"][0]["metadata"]["name"], "upgrade");
    }
    Settled();
  }
  EXPECT_EQ(ran, 9);

  // The docs' other habits: the long name with TYPE/NAME, -n before the command, wait, and
  // JSONPath filters on the conditions.
  auto r = Shell(
      "lcactl -n openshift-lifecycle-agent get imagebasedupgrade.lca.openshift.io/upgrade "
      "-o jsonpath='{.status.conditions[?(@.type==\"Idle\")].status}'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "True");
  r = Shell(
      "lcactl get ibu upgrade -o jsonpath='{.spec.stage}{\"\\n\"}' -n openshift-lifecycle-agent");
  EXPECT_EQ(r.out, "Idle\n") << r.err;
  r = Shell(
      "lcactl get imagebasedupgrades -o jsonpath='{range .items[*]}{.metadata.name}"
      "{\" \"}{.status.conditions[?(@.type == \"Idle\")].reason}{\"\\n\"}{end}'");
  EXPECT_EQ(r.out, "upgrade Idle\n") << r.err;
  r = Shell(
      "lcactl wait --for=condition=Idle imagebasedupgrades.lca.openshift.io/upgrade --timeout=10s "
      "-n openshift-lifecycle-agent");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade condition met\n");
  r = Shell("lcactl get imagebasedupgrades.v1.lca.openshift.io upgrade -o name");
  EXPECT_EQ(r.out, "imagebasedupgrade.lca.openshift.io/upgrade\n") << r.err;
  r = Shell("lcactl get ibu -o jsonpath='{.status.conditions[?(@.type==}'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: error parsing jsonpath"), std::string::npos) << r.err;
}

TEST_F(DaemonCliTest, WaitEndsAtOnceWhenTheStageItWaitsOnFailed) {
  StartDaemon();
  Settled();
  auto r = Ctl(
      {"patch", "ibu", "upgrade", "--type=merge", "-p",
       R"({"spec":{"stage":"Prep","seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/seed:4.15.2"}}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto t0 = std::chrono::steady_clock::now();
  r = Ctl({"wait", "ibu", "upgrade", "--for=condition=PrepCompleted", "--timeout=2h"});
  EXPECT_EQ(r.code, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_NE(r.err.find("error: imagebasedupgrades/upgrade: condition PrepCompleted will not "
                       "become True: Prep failed: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the host is not booted from ostree"), std::string::npos) << r.err;
  // Upgrade asked after a failed Prep: an invalid transition, also not worth waiting for.
  r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", R"({"spec":{"stage":"Upgrade"}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Ctl({"wait", "ibu", "--for=condition=UpgradeCompleted", "--timeout=2h"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Upgrade failed: UpgradeInProgress is False (InvalidTransition)"),
            std::string::npos)
      << r.err;
}

TEST_F(DaemonCliTest, GetWatchPrintsEachChangeUntilStopped) {
  StartDaemon();
  Settled();
  Watcher table(*this, {"get", "ibu", "-w"});
  Watcher path(*this, {"get", "ibu", "upgrade", "-w", "-o",
                       R"(jsonpath={.metadata.annotations.note}{"\n"})"});
  ASSERT_TRUE(table.WaitForLines("^upgrade ", 1)) << table.Output();
  ASSERT_TRUE(path.WaitForLines("^$", 1)) << path.Output();
  ASSERT_EQ(Ctl({"annotate", "ibu", "upgrade", "note=first"}).code, 0);
  ASSERT_TRUE(path.WaitForLines("^first$", 1)) << path.Output();
  ASSERT_EQ(Ctl({"annotate", "ibu", "upgrade", "--overwrite", "note=second"}).code, 0);
  ASSERT_TRUE(path.WaitForLines("^second$", 1)) << path.Output();
  ASSERT_TRUE(table.WaitForLines("^upgrade ", 3)) << table.Output();
  EXPECT_EQ(table.Count(std::regex("^NAME ")), 1u) << table.Output();  // one header only
  EXPECT_TRUE(table.Stop()) << "get -w ended by itself: " << table.result().stderr_tail;
  EXPECT_TRUE(path.Stop()) << path.result().stderr_tail;
}

TEST_F(DaemonCliTest, StatusWatchKeepsWatchingAnIdleAgent) {
  StartDaemon();
  Settled();
  Watcher watch(*this, {"status", "--watch"});
  ASSERT_TRUE(watch.WaitForLines("^Valid next stages:", 1)) << watch.Output();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(Ctl({"annotate", "ibu", "upgrade", "note=x"}).code, 0);
  // Still there, and the change shows as a new page.
  ASSERT_TRUE(watch.WaitForLines("^Valid next stages:", 2)) << watch.Output();
  EXPECT_TRUE(watch.Stop()) << "status --watch exited while Idle: " << watch.Output();
}

TEST_F(DaemonCliTest, VersionAsJsonAndYaml) {
  StartDaemon();
  auto r = Ctl({"version", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json v = Json::parse(r.out);
  EXPECT_EQ(v["clientVersion"]["lcaVersion"], v["serverVersion"]["lcaVersion"]);
  // The shape is stable (tests/golden/version-json.txt); the version number is not.
  const std::string version = v["clientVersion"]["lcaVersion"];
  std::string shape = r.out;
  for (size_t at; (at = shape.find(version)) != std::string::npos;) {
    shape.replace(at, version.size(), "<version>");
  }
  const auto golden = std::string(LCA_TEST_SOURCE_DIR) + "/tests/golden/version-json.txt";
  if (std::getenv("LCA_UPDATE_GOLDEN") != nullptr) WriteFileAtomic(golden, shape, 0644);
  EXPECT_EQ(shape, ReadFile(golden));
  r = Ctl({"version", "-o", "yaml"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ParseYaml(r.out, "version"), v);
  StopDaemon();
  // Without the daemon: the client's part, and the error.
  r = Ctl({"version", "-o", "json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Json::parse(r.out),
            Json::parse(R"({"clientVersion":{"lcaVersion":")" + version + "\"}}"));
  EXPECT_NE(r.err.find("is lifecycle-agent running?"), std::string::npos) << r.err;
}

TEST_F(DaemonCliTest, ErrorsSpeakKubectlAndNameTheCause) {
  auto r = Ctl({"frobnicate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "error: unknown command \"frobnicate\" for \"lcactl\"\nRun 'lcactl --help' for usage.\n");
  r = Ctl({"recovery", "undo"});
  EXPECT_NE(r.err.find("error: unknown command \"undo\" for \"lcactl recovery\""),
            std::string::npos)
      << r.err;
  // A malformed patch: where, and what, without the JSON library's tags.
  r = Ctl({"patch", "ibu", "upgrade", "--type=merge", "-p", "{\"spec\": {\"stage\" \"Prep\"}}"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("patch: invalid JSON at line 1, column 24: syntax error while parsing "
                       "object separator - unexpected string literal; expected ':'"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
  // Socket refused to a non-root caller: say root is needed, not "is it running?".
  StartDaemon();
  r = Ctl({"get", "ibu"}, "65534");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the lifecycle-agent API is for root: run lcactl as root"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("is lifecycle-agent running?"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lca
