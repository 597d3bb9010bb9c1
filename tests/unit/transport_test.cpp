// Server and client together over real Unix sockets in a temporary directory.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/unix_http_client.hpp"
#include "agent/server/unix_http_server.hpp"
#include "common/error.hpp"

namespace lca::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

bool AllowAll(const PeerCred&) { return true; }

void Reply(ResponseSink& sink, int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  sink.Send(r);
}

int ConnectRaw(const fs::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};  // a broken server must not hang the test
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Reads until the server closes the connection (or the receive timeout hits).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Sends raw bytes, bypassing curl, and returns everything the server answers before closing.
std::string RawExchange(const fs::path& path, const std::string& bytes) {
  int fd = ConnectRaw(path);
  if (fd < 0) return "connect failed";
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  std::string out = ReadAll(fd);
  ::close(fd);
  return out;
}

std::size_t Count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lca-transport-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    sock_ = dir_ / "lca.sock";
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  UnixHttpServer& StartServer(Handler handler, Authorizer authorize = AllowAll,
                              const std::function<void(ServerOptions&)>& tweak = {}) {
    ServerOptions opts;
    opts.socket_path = sock_;
    if (tweak) tweak(opts);
    server_ = std::make_unique<UnixHttpServer>(opts, std::move(handler), std::move(authorize));
    server_->Start();
    return *server_;
  }

  fs::path dir_;
  fs::path sock_;
  std::unique_ptr<UnixHttpServer> server_;
};

TEST_F(TransportTest, GetAndPatchRoundTripWithBodyHeadersAndQuery) {
  std::mutex mu;
  std::vector<Request> seen;
  StartServer([&](const Request& req, ResponseSink& sink) {
    {
      std::lock_guard lk(mu);
      seen.push_back(req);
    }
    Reply(sink, req.method == "PATCH" ? 201 : 200, "echo:" + req.body);
  });
  UnixHttpClient client(sock_);

  ClientReply get =
      client.Request("GET", "/apis/x/v1/y%20z/a+b?a=1&b=hello+world&c=%2Fslash%26&flag&b=second");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "echo:");

  ClientReply patch = client.Request("PATCH", "/apis/x/v1/thing", R"({"spec":{"stage":"Prep"}})",
                                     "application/merge-patch+json");
  EXPECT_EQ(patch.status, 201);
  EXPECT_EQ(patch.body, R"(echo:{"spec":{"stage":"Prep"}})");
  ASSERT_EQ(patch.headers["content-type"], std::vector<std::string>{"application/json"});

  std::lock_guard lk(mu);
  ASSERT_EQ(seen.size(), 2u);
  const Request& g = seen[0];
  EXPECT_EQ(g.method, "GET");
  EXPECT_EQ(g.target, "/apis/x/v1/y%20z/a+b?a=1&b=hello+world&c=%2Fslash%26&flag&b=second");
  EXPECT_EQ(g.path, "/apis/x/v1/y z/a+b");  // '+' is only a space in the query
  EXPECT_EQ(g.query.at("a"), "1");
  EXPECT_EQ(g.query.at("b"), "hello world");  // first value wins
  EXPECT_EQ(g.query.at("c"), "/slash&");
  EXPECT_EQ(g.query.at("flag"), "");
  EXPECT_EQ(g.query.size(), 4u);
  EXPECT_EQ(g.Header("host"), "localhost");
  EXPECT_EQ(g.Header("x-missing"), "");
  EXPECT_TRUE(g.body.empty());

  const Request& p = seen[1];
  EXPECT_EQ(p.method, "PATCH");
  EXPECT_EQ(p.path, "/apis/x/v1/thing");
  EXPECT_TRUE(p.query.empty());
  EXPECT_EQ(p.body, R"({"spec":{"stage":"Prep"}})");
  EXPECT_EQ(p.Header("content-type"), "application/merge-patch+json");
  EXPECT_EQ(p.Header("content-length"), "25");
  EXPECT_EQ(p.Header("expect"), "");  // the client suppresses 100-continue
}

TEST_F(TransportTest, ExtraResponseHeadersReachClient) {
  StartServer([](const Request&, ResponseSink& sink) {
    Response r;
    r.body = "{}";
    r.headers = {
        {"Warning", R"(299 - "spec.foo is deprecated")"}, {"X-Multi", "1"}, {"X-Multi", "2"}};
    sink.Send(r);
  });
  ClientReply reply = UnixHttpClient(sock_).Request("GET", "/x");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["warning"],
            std::vector<std::string>{R"(299 - "spec.foo is deprecated")"});
  EXPECT_EQ(reply.headers["x-multi"], (std::vector<std::string>{"1", "2"}));
}

TEST_F(TransportTest, InvalidExtraHeaderIsAnInternalError) {
  StartServer([](const Request&, ResponseSink& sink) {
    Response r;
    r.headers = {{"X-Evil", "a\r\nSet-Cookie: b"}};
    sink.Send(r);
  });
  ClientReply reply = UnixHttpClient(sock_).Request("GET", "/x");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.headers.count("set-cookie"), 0u);
}

TEST_F(TransportTest, SocketCreatedWithModeInNewParentAndRemovedOnStop) {
  sock_ = dir_ / "run" / "lca" / "api.sock";
  UnixHttpServer& server =
      StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "{}"); });
  struct stat st;
  ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(sock_.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/").status, 200);

  server.Stop();
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock_)));
  server.Stop();  // idempotent
}

TEST_F(TransportTest, StaleSocketFileIsReplaced) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // leaves the socket file behind, with nobody listening
  ASSERT_TRUE(fs::is_socket(sock_));

  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "fresh"); });
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/").body, "fresh");
}

TEST_F(TransportTest, RegularFileAtSocketPathIsRefused) {
  { std::ofstream(sock_) << "precious"; }
  ServerOptions opts;
  opts.socket_path = sock_;
  UnixHttpServer server(
      opts, [](const Request&, ResponseSink&) {}, AllowAll);
  try {
    server.Start();
    FAIL() << "Start() accepted a regular file at the socket path";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConflict);
    EXPECT_NE(std::string(e.what()).find(sock_.string()), std::string::npos) << e.what();
  }
  std::ifstream in(sock_);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(TransportTest, LiveSocketIsNotStolen) {
  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "first"); });
  ServerOptions opts;
  opts.socket_path = sock_;
  UnixHttpServer second(
      opts, [](const Request&, ResponseSink&) {}, AllowAll);
  try {
    second.Start();
    FAIL() << "second server took over a live socket";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConflict);
  }
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/").body, "first");
}

TEST_F(TransportTest, AuthorizerRejectionIs403Status) {
  std::atomic<int> handled{0};
  StartServer([&](const Request&, ResponseSink& sink) { ++handled, Reply(sink, 200, "{}"); },
              [](const PeerCred&) { return false; });
  ClientReply reply = UnixHttpClient(sock_).Request("PATCH", "/x", "{}", "application/json");
  EXPECT_EQ(reply.status, 403);
  const std::string expected =
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"uid )" +
      std::to_string(::getuid()) +
      R"json( is not allowed to use the lifecycle-agent API (root only)","reason":"Forbidden",)json"
      R"("code":403})";
  EXPECT_EQ(reply.body, expected);
  EXPECT_EQ(handled, 0);
}

TEST_F(TransportTest, HandlerSeesPeerCredentials) {
  std::mutex mu;
  PeerCred seen;
  StartServer([&](const Request& req, ResponseSink& sink) {
    {
      std::lock_guard lk(mu);
      seen = req.peer;
    }
    Reply(sink, 200, "{}");
  });
  ASSERT_EQ(UnixHttpClient(sock_).Request("GET", "/").status, 200);
  std::lock_guard lk(mu);
  EXPECT_EQ(seen.uid, ::getuid());
  EXPECT_EQ(seen.gid, ::getgid());
  EXPECT_EQ(seen.pid, ::getpid());
}

TEST_F(TransportTest, NonRootPeerIsRejected) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // let the unprivileged child reach the socket
  std::atomic<uid_t> seen_uid{0};
  std::atomic<int> handled{0};
  StartServer([&](const Request&, ResponseSink& sink) { ++handled, Reply(sink, 200, "{}"); },
              [&](const PeerCred& peer) {
                seen_uid = peer.uid;
                return peer.uid == 0;
              },
              [](ServerOptions& o) { o.socket_mode = 0666; });

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest assertions here, only an exit code.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    try {
      ClientReply reply = UnixHttpClient(sock_).Request("GET", "/x", "", "", 3000ms);
      bool ok =
          reply.status == 403 && reply.body.find("uid 65534 is not allowed") != std::string::npos;
      ::_exit(ok ? 0 : 1);
    } catch (...) {
      ::_exit(2);
    }
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(seen_uid.load(), 65534u);
  EXPECT_EQ(handled, 0);
}

// A peer holding `n` idle connections, from a forked child running as `uid`. Only
// async-signal-safe calls after fork: the server's threads may hold the allocator's lock.
class IdleFlood {
 public:
  IdleFlood(const fs::path& sock, uid_t uid, int n) {
    int ready[2];
    int done[2];
    if (::pipe(ready) != 0 || ::pipe(done) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(done[1]);
      if (::getuid() != uid && (::setgid(uid) != 0 || ::setuid(uid) != 0)) ::_exit(10);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
      char opened = 0;
      for (int i = 0; i < n; ++i) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
          opened = static_cast<char>(std::min(opened + 1, 127));
        }
      }
      if (::write(ready[1], &opened, 1) != 1) ::_exit(11);
      char c;
      while (::read(done[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(done[0]);
    done_ = done[1];
    char opened = 0;
    if (::read(ready[0], &opened, 1) == 1) opened_ = opened;
    ::close(ready[0]);
  }
  ~IdleFlood() {
    if (done_ >= 0) ::close(done_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  // Connections that connect() accepted (capped at 127 in the count).
  int opened() const { return opened_; }

 private:
  pid_t pid_ = -1;
  int done_ = -1;
  int opened_ = 0;
};

TEST_F(TransportTest, RefusedPeersFloodingCannotStarveAPermittedOne) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  StartServer([&](const Request&, ResponseSink& sink) { Reply(sink, 200, "{}"); },
              [](const PeerCred& peer) { return peer.uid == 0; },
              [](ServerOptions& o) { o.socket_mode = 0666; });
  IdleFlood flood(sock_, 65534, 300);
  ASSERT_GT(flood.opened(), 100);
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/x", "", "", 3000ms).status, 200);
    EXPECT_LT(Clock::now() - t0, 1s);
  }
}

TEST_F(TransportTest, OneUidsIdleConnectionsCannotStarveAnother) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  std::atomic<int> handled{0};
  StartServer([&](const Request&, ResponseSink& sink) { ++handled, Reply(sink, 200, "{}"); },
              AllowAll, [](ServerOptions& o) { o.socket_mode = 0666; });
  IdleFlood flood(sock_, 65534, 300);
  ASSERT_GT(flood.opened(), 100);
  const auto t0 = Clock::now();
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/x", "", "", 3000ms).status, 200);
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(handled, 1);
}

TEST_F(TransportTest, AUidAtItsLimitGivesUpItsOldestIdleConnection) {
  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "{}"); });
  std::vector<int> fds;
  for (int i = 0; i < 32; ++i) {
    fds.push_back(ConnectRaw(sock_));
    ASSERT_GE(fds.back(), 0);
    std::this_thread::sleep_for(2ms);  // a clear order of idleness
  }
  // The 33rd connection is served; the oldest idle one was closed to make room.
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/x", "", "", 3000ms).status, 200);
  const auto t0 = Clock::now();
  EXPECT_EQ(ReadAll(fds[0]), "");
  EXPECT_LT(Clock::now() - t0, 2s) << "the oldest connection was not closed";
  // The others are still open: a request on the newest one is answered.
  const std::string get = "GET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fds.back(), get.data(), get.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(get.size()));
  EXPECT_NE(ReadAll(fds.back()).find("HTTP/1.1 200"), std::string::npos);
  for (int fd : fds) ::close(fd);
}

TEST_F(TransportTest, StreamedLinesArriveOneByOne) {
  std::atomic<bool> handler_done{false};
  StartServer([&](const Request&, ResponseSink& sink) {
    ASSERT_TRUE(sink.BeginStream(200, "application/json;stream=watch"));
    EXPECT_TRUE(sink.Write("line1\n"));
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(sink.Write("li"));  // a line split across chunks
    EXPECT_TRUE(sink.Write(""));    // must not end the stream
    std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(sink.Write("ne2\nline3\n"));
    std::this_thread::sleep_for(20ms);
    handler_done = true;
  });
  std::vector<std::string> lines;
  std::vector<bool> done_when_seen;
  long status = UnixHttpClient(sock_).StreamLines("/watch?watch=true", [&](std::string_view l) {
    lines.emplace_back(l);
    done_when_seen.push_back(handler_done);
    return true;
  });
  EXPECT_EQ(status, 200);
  EXPECT_EQ(lines, (std::vector<std::string>{"line1", "line2", "line3"}));
  ASSERT_FALSE(done_when_seen.empty());
  EXPECT_FALSE(done_when_seen[0]) << "first line was not delivered while the stream was open";
}

TEST_F(TransportTest, StreamErrorBodyIsFedToo) {
  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 404, "{\"code\":404}"); });
  std::vector<std::string> lines;
  long status = UnixHttpClient(sock_).StreamLines("/missing", [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  EXPECT_EQ(status, 404);
  EXPECT_EQ(lines, std::vector<std::string>{"{\"code\":404}"});
}

TEST_F(TransportTest, EarlyStopMakesServerWriteFail) {
  std::promise<Clock::time_point> write_failed;
  StartServer([&](const Request&, ResponseSink& sink) {
    if (!sink.BeginStream(200, "application/json")) return;
    for (int i = 0; i < 500; ++i) {
      if (!sink.Write("tick " + std::to_string(i) + "\n")) {
        write_failed.set_value(Clock::now());
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  int seen = 0;
  long status = UnixHttpClient(sock_).StreamLines("/watch", [&](std::string_view) {
    ++seen;
    return false;
  });
  auto stopped_at = Clock::now();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(seen, 1);
  auto fut = write_failed.get_future();
  ASSERT_EQ(fut.wait_for(2s), std::future_status::ready) << "server kept writing";
  EXPECT_LT(fut.get() - stopped_at, 1s);
}

TEST_F(TransportTest, StopReturnsPromptlyWithOpenStream) {
  std::promise<void> first_line;
  std::atomic<bool> saw_stopping{false};
  UnixHttpServer& server = StartServer([&](const Request&, ResponseSink& sink) {
    if (!sink.BeginStream(200, "application/json")) return;
    sink.Write("hello\n");
    // A quiet watch: nothing to write, only Stopping() to honour.
    while (!sink.Stopping()) std::this_thread::sleep_for(5ms);
    saw_stopping = true;
    EXPECT_FALSE(sink.Write("late\n"));
  });
  std::optional<Errc> client_error;
  std::thread client([&] {
    try {
      UnixHttpClient(sock_).StreamLines("/watch", [&](std::string_view) {
        first_line.set_value();
        return true;
      });
    } catch (const Error& e) {
      client_error = e.code();
    }
  });
  ASSERT_EQ(first_line.get_future().wait_for(2s), std::future_status::ready);
  auto t0 = Clock::now();
  server.Stop();
  EXPECT_LT(Clock::now() - t0, 2s);
  client.join();
  EXPECT_TRUE(saw_stopping);
  // The stream is cut without its last chunk, so the client knows it did not end cleanly.
  ASSERT_TRUE(client_error.has_value());
  EXPECT_EQ(*client_error, Errc::kUnavailable);
}

TEST_F(TransportTest, MalformedRequestIs400) {
  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "{}"); });
  std::string answer = RawExchange(sock_, "this is not http\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << answer;
  EXPECT_NE(answer.find(R"("reason":"BadRequest")"), std::string::npos) << answer;
  EXPECT_NE(answer.find(R"("code":400)"), std::string::npos) << answer;

  ClientReply reply = UnixHttpClient(sock_).Request("GET", "/bad%zzescape");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("percent-encoding"), std::string::npos) << reply.body;
}

TEST_F(TransportTest, OversizedBodyIs413) {
  StartServer([](const Request& req, ResponseSink& sink) { Reply(sink, 200, req.body); }, AllowAll,
              [](ServerOptions& o) { o.max_body_bytes = 1024; });
  UnixHttpClient client(sock_);
  ClientReply ok = client.Request("PUT", "/x", std::string(1024, 'a'), "text/plain");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body.size(), 1024u);

  ClientReply big = client.Request("PUT", "/x", std::string(4096, 'b'), "text/plain");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find(R"("reason":"RequestEntityTooLarge")"), std::string::npos) << big.body;

  // Without Content-Length the limit has to be enforced while the chunks come in.
  std::string chunked = "POST /x HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                        std::string(2048, 'c') + "\r\n0\r\n\r\n";
  std::string answer = RawExchange(sock_, chunked);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0u) << answer;
}

TEST_F(TransportTest, HandlerExceptionIs500) {
  StartServer([](const Request&, ResponseSink&) { throw std::runtime_error("boom \"quoted\""); });
  ClientReply reply = UnixHttpClient(sock_).Request("DELETE", "/x");
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find(R"("message":"boom \"quoted\"")"), std::string::npos) << reply.body;
  EXPECT_NE(reply.body.find(R"("reason":"InternalError")"), std::string::npos) << reply.body;
}

TEST_F(TransportTest, HandlerWithoutResponseIs500) {
  StartServer([](const Request&, ResponseSink&) {});
  EXPECT_EQ(UnixHttpClient(sock_).Request("GET", "/x").status, 500);
}

TEST_F(TransportTest, KeepAliveServesPipelinedRequests) {
  StartServer([](const Request& req, ResponseSink& sink) { Reply(sink, 200, req.path); });
  std::string answer = RawExchange(sock_,
                                   "GET /first HTTP/1.1\r\nHost: l\r\n\r\n"
                                   "GET /second HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Count(answer, "HTTP/1.1 200 OK"), 2u) << answer;
  auto first = answer.find("/first");
  auto second = answer.find("/second");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
}

TEST_F(TransportTest, IdleConnectionIsClosed) {
  StartServer([](const Request&, ResponseSink& sink) { Reply(sink, 200, "{}"); }, AllowAll,
              [](ServerOptions& o) { o.idle_timeout = std::chrono::seconds(1); });
  int fd = ConnectRaw(sock_);
  ASSERT_GE(fd, 0);
  auto t0 = Clock::now();
  std::string got = ReadAll(fd);  // returns at EOF
  auto waited = Clock::now() - t0;
  ::close(fd);
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 3s);
}

TEST_F(TransportTest, MissingSocketIsUnavailable) {
  fs::path missing = dir_ / "nope.sock";
  try {
    UnixHttpClient(missing).Request("GET", "/x");
    FAIL() << "request to a missing socket succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUnavailable);
    std::string msg = e.what();
    EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("is lifecycle-agent running?"), std::string::npos) << msg;
  }
}

TEST_F(TransportTest, ClientTimeout) {
  StartServer([](const Request&, ResponseSink& sink) {
    for (int i = 0; i < 200 && !sink.Stopping(); ++i) std::this_thread::sleep_for(10ms);
    Reply(sink, 200, "{}");
  });
  auto t0 = Clock::now();
  try {
    UnixHttpClient(sock_).Request("GET", "/slow", "", "", 150ms);
    FAIL() << "slow request did not time out";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kTimeout) << e.what();
  }
  EXPECT_LT(Clock::now() - t0, 1s);
}

}  // namespace
}  // namespace lca::http
