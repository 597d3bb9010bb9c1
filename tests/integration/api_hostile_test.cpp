// The real lifecycle-agent under hostile requests on its socket: no request under the body
// limit may crash it, bad input is a 4xx naming what is wrong (never a 500 with the JSON
// library's text), a rejected patch changes nothing, and a flood of idle connections from a
// user who may not use the API cannot starve root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/unix_http_client.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/text_excerpt.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kDaemon = std::string(LCA_TEST_BINARY_DIR) + "/agent/daemon/lifecycle-agent";
const std::string kObject = "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade";
const std::string kMerge = "application/merge-patch+json";

class ApiHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::chmod(tmp_.path().c_str(), 0755);  // the non-root peer must reach the socket
    WriteFileAtomic(tmp_ / "cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda4 rw\n", 0644);
    WriteFileAtomic(tmp_ / "none.yaml", "", 0644);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << ReadFileIfExists(tmp_ / "daemon.log").value_or("") << "\n";
  }

  std::string Socket() const { return (tmp_ / "run/lca.sock").string(); }

  void StartDaemon(std::vector<std::string> extra = {}) {
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
                                     (tmp_ / "none.yaml").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_.Start(argv, {}, (tmp_ / "daemon.log").string());
    for (int i = 0; i < 500; ++i) {
      try {
        if (Client().Request("GET", kObject, "", "", 1000ms).status == 200) return;
      } catch (const Error&) {
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "daemon did not come up";
  }

  http::UnixHttpClient Client() const { return http::UnixHttpClient(Socket()); }

  // Still the same process, and not exited (waitpid would reap a crashed one).
  void ExpectAlive(const std::string& after) {
    ASSERT_FALSE(daemon_.Wait(0ms).has_value()) << "the daemon died after " << after;
    ASSERT_EQ(::kill(daemon_.pid(), 0), 0) << after;
  }

  // What a patch may change: spec and metadata, without resourceVersion (status moves with the
  // controller on its own).
  Json Stored() {
    const auto r = Client().Request("GET", kObject, "", "", 10000ms);
    EXPECT_EQ(r.status, 200) << r.body;
    Json o = ParseJson(r.body, "object");
    o["metadata"].erase("resourceVersion");
    return Json{{"spec", o["spec"]}, {"metadata", o["metadata"]}};
  }

  http::ClientReply Patch(const std::string& body) {
    return Client().Request("PATCH", kObject, body, kMerge, 10000ms);
  }

  test::TempDir tmp_{"lca-hostile"};
  test::ChildProcess daemon_;
};

struct Case {
  std::string what;
  std::string method, path, body, content_type;
  long status;
  std::string reason;
  std::string message_part;
};

std::string Nested(std::size_t depth, const std::string& open, const std::string& inner,
                   const std::string& close) {
  std::string s;
  s.reserve(depth * (open.size() + close.size()) + inner.size());
  for (std::size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (std::size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST_F(ApiHostileTest, DeepLongAndMalformedRequestsAre4xxNamingTheProblem) {
  StartDaemon();
  const std::string long_image(30000, 'a');
  const std::vector<Case> cases = {
      {"100,000 nested arrays", "PATCH", kObject, Nested(100000, "[", "", "]"), kMerge, 400,
       "BadRequest", "patch: invalid JSON: nested deeper than 100 levels"},
      {"100,000 nested objects in spec", "PATCH", kObject,
       "{\"spec\":" + Nested(100000, "{\"a\":", "1", "}") + "}", kMerge, 400, "BadRequest",
       "nested deeper than 100 levels"},
      {"deep create", "POST", "/apis/lca.openshift.io/v1/imagebasedupgrades",
       Nested(100000, "[", "", "]"), "application/json", 400, "BadRequest", "nested deeper"},
      {"30,000-character image with a space", "PATCH", kObject,
       R"({"spec":{"seedImageRef":{"image":")" + long_image + R"( x"}}})", kMerge, 422, "Invalid",
       "spec.seedImageRef.image: Invalid value: \"aaaa"},
      {"invalid UTF-8 in a string", "PATCH", kObject,
       "{\"metadata\":{\"annotations\":{\"a\":\"\xff\xfe\"}}}", kMerge, 400, "BadRequest",
       "error decoding patch: patch: invalid JSON at line 1, column "},
      {"overlong UTF-8", "PATCH", kObject, "{\"spec\":{\"stage\":\"\xc0\xaf\"}}", kMerge, 400,
       "BadRequest", "ill-formed UTF-8"},
      {"number out of range", "PATCH", kObject,
       R"({"spec":{"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":1e99999}}})", kMerge, 400,
       "BadRequest", "number overflow parsing '1e99999'"},
      {"wrong type for a struct", "PATCH", kObject, R"({"spec":{"seedImageRef":"x"}})", kMerge, 422,
       "Invalid", "spec.seedImageRef"},
      {"wrong type in a map", "PATCH", kObject, R"({"metadata":{"annotations":{"a":1}}})", kMerge,
       422, "Invalid", "metadata.annotations.a"},
      {"a non-object patch", "PATCH", kObject, "[1,2]", kMerge, 422, "Invalid", "JSON object"},
      {"create naming itself with a number", "POST", "/apis/lca.openshift.io/v1/imagebasedupgrades",
       R"({"metadata":{"name":5}})", "application/json", 422, "Invalid", "must be named 'upgrade'"},
      {"invalid UTF-8 in the path", "GET", "/apis/lca.openshift.io/v1/imagebasedupgrades/%ff%fe",
       "", "", 404, "NotFound", "\\xFF\\xFE"},
      {"watch with a bad timeout", "GET", kObject + "?watch=true&timeoutSeconds=soon", "", "", 400,
       "BadRequest", "timeoutSeconds"},
      {"watch with a negative resourceVersion", "GET", kObject + "?watch=true&resourceVersion=-1",
       "", "", 400, "BadRequest", "resourceVersion"},
  };
  const Json before = Stored();
  for (const Case& c : cases) {
    const auto r = Client().Request(c.method, c.path, c.body, c.content_type, 10000ms);
    ExpectAlive(c.what);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << Excerpt(r.body, 500);
    EXPECT_TRUE(IsValidUtf8(r.body)) << c.what;
    Json status;
    ASSERT_NO_THROW(status = ParseJson(r.body, "answer")) << c.what;
    EXPECT_EQ(status.value("kind", ""), "Status") << c.what;
    EXPECT_EQ(status.value("reason", ""), c.reason) << c.what;
    const std::string message = status.value("message", "");
    EXPECT_NE(message.find(c.message_part), std::string::npos) << c.what << ": " << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << c.what << ": " << message;
    EXPECT_LT(message.size(), 5000u) << c.what;
    EXPECT_EQ(Stored(), before) << c.what;
  }
  // A 30,000-character image without whitespace is valid (the CRD sets no maxLength): stored.
  const auto r = Patch(R"({"spec":{"seedImageRef":{"image":")" + long_image + R"("}}})");
  EXPECT_EQ(r.status, 200) << Excerpt(r.body, 500);
  EXPECT_EQ(Stored()["spec"]["seedImageRef"]["image"], long_image);
  ExpectAlive("the long image");
}

// Mutations of valid patches: JSON-ish text that is sometimes still valid.
std::string Mutate(std::string s, std::mt19937& rng) {
  static const std::string kAlphabet = "{}[]\":,\\ 0123456789eE+-.tfnulsa\xff\xc3\x80\x00";
  const int edits = std::uniform_int_distribution<int>(1, 4)(rng);
  for (int i = 0; i < edits; ++i) {
    std::uniform_int_distribution<std::size_t> pos(0, s.empty() ? 0 : s.size() - 1);
    const char c = kAlphabet[std::uniform_int_distribution<std::size_t>(0, kAlphabet.size())(rng) %
                             kAlphabet.size()];
    switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
      case 0:
        if (!s.empty()) s[pos(rng)] = c;
        break;
      case 1:
        s.insert(s.empty() ? 0 : pos(rng), 1, c);
        break;
      case 2:
        if (!s.empty()) s.erase(pos(rng), 1);
        break;
      case 3: {  // a run of brackets, sometimes very deep
        const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 150)(rng) *
                              (std::uniform_int_distribution<int>(0, 9)(rng) == 0 ? 1000 : 1);
        s.insert(s.empty() ? 0 : pos(rng), std::string(n, c == '{' ? '{' : '['));
        break;
      }
      default: {  // a long run inside whatever is there
        const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 40000)(rng);
        s.insert(s.empty() ? 0 : pos(rng), std::string(n, c));
        break;
      }
    }
  }
  return s;
}

std::string RandomBytes(std::mt19937& rng) {
  std::string s(std::uniform_int_distribution<std::size_t>(0, 3000)(rng), '\0');
  for (char& c : s) c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
  return s;
}

TEST_F(ApiHostileTest, FuzzedBodiesNeverCrashTheDaemonOrChangeWhatTheyFailToPatch) {
  StartDaemon();
  const pid_t pid = daemon_.pid();
  const unsigned seed = 20261207;
  std::mt19937 rng(seed);
  const std::vector<std::string> valid = {
      R"({"metadata":{"annotations":{"lca.openshift.io/trigger-reconcile":"1"}}})",
      R"({"metadata":{"labels":{"a":"b"},"annotations":{"x":"y"}}})",
      R"({"spec":{"seedImageRef":{"version":"4.15.2","image":"quay.io/org/seed:4.15.2"}}})",
      R"({"spec":{"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":60}}})",
      R"({"spec":{"seedImageRef":{"pullSecretRef":{"name":"s"}}},"metadata":{"name":"upgrade"}})",
  };
  Json stored = Stored();
  int rejected = 0;
  int accepted = 0;
  const auto deadline = Clock::now() + 6s;
  for (int i = 0; Clock::now() < deadline || i < 100; ++i) {
    std::string body;
    switch (i % 4) {
      case 0:
        body = RandomBytes(rng);
        break;
      case 1:
        body = Nested(std::uniform_int_distribution<std::size_t>(90, 120000)(rng),
                      i % 8 == 1 ? "[" : "{\"a\":", "0", i % 8 == 1 ? "]" : "}");
        break;
      default:
        body = Mutate(valid[static_cast<std::size_t>(i) % valid.size()], rng);
    }
    const auto r = Patch(body);
    ASSERT_LT(r.status, 500) << "seed " << seed << " request " << i << ": " << Excerpt(body, 300)
                             << " -> " << Excerpt(r.body, 500);
    ASSERT_GE(r.status, 200) << r.body;
    if (r.status >= 400) {
      ++rejected;
      ASSERT_EQ(Stored(), stored) << "seed " << seed << " request " << i << " was rejected ("
                                  << r.status << ") yet changed the object: " << Excerpt(body, 300);
    } else {
      ++accepted;
      stored = Stored();
    }
    if (i % 25 == 0) {
      ExpectAlive("request " + std::to_string(i));
      ASSERT_EQ(daemon_.pid(), pid);
    }
  }
  ExpectAlive("the fuzzing");
  std::cout << "[ fuzz ] seed " << seed << ": " << rejected << " rejected, " << accepted
            << " accepted\n";
  EXPECT_GT(rejected, 50);
  EXPECT_GT(accepted, 0) << "no mutation stayed valid: the mutator is too blunt";
}

// A non-root user opens `n` idle connections (a forked child; only async-signal-safe calls).
pid_t FloodAsNobody(const std::string& sock, int n, int& done_fd) {
  int ready[2];
  int done[2];
  if (::pipe(ready) != 0 || ::pipe(done) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    ::close(done[1]);  // else the read below never sees EOF
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd >= 0) ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(11);
    while (::read(done[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(done[0]);
  char c;
  if (::read(ready[0], &c, 1) != 1) c = 0;
  ::close(ready[0]);
  done_fd = done[1];
  return pid;
}

TEST_F(ApiHostileTest, IdleConnectionsOfANonRootUserDoNotStarveRoot) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  StartDaemon({"--socket-mode", "0666"});
  int done_fd = -1;
  const pid_t flood = FloodAsNobody(Socket(), 300, done_fd);
  ASSERT_GT(flood, 0);
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    const auto r = Client().Request("GET", kObject, "", "", 5000ms);
    const auto took = Clock::now() - t0;
    EXPECT_EQ(r.status, 200);
    EXPECT_LT(took, 1s) << "root waited "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms behind 300 idle connections of uid 65534";
  }
  ::close(done_fd);
  ::waitpid(flood, nullptr, 0);
  ExpectAlive("the flood");
}

}  // namespace
}  // namespace lca
