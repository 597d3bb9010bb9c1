#include "agent/server/unix_http_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "agent/server/refusal.hpp"
#include "common/error.hpp"

namespace lca::http {

std::string Request::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string() : it->second;
}

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Local = net::local::stream_protocol;
using boost::system::error_code;

// Generous for a local API, yet bounds what an idle or hostile peer can make us buffer.
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
// After an error answer we read (and drop) what the client is still sending for at most this
// long, so closing does not cut the connection before the client has read the answer.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = 4 << 20;
// Each connection costs a thread. Far above what the CLI and a few watchers need, but bounds
// what a runaway client can cost: past either limit a new connection takes the place of the
// oldest idle one of the same uid (of the uid holding the most, for the total), or is refused.
constexpr std::size_t kMaxConnections = 256;
constexpr std::size_t kMaxConnectionsPerUid = 32;
// Refused peers are answered without a thread (refusal.hpp); this many at once, the rest are
// closed unanswered.
constexpr std::size_t kMaxRefusals = 16;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Returns nullopt on a malformed escape ("%", "%4", "%zz") rather than guessing what was meant.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// Fills req.path and req.query from req.target; on failure returns a message for a 400.
std::optional<std::string> ParseTarget(Request& req) {
  std::string_view target = req.target;
  // Only origin-form ("/path?query") is meaningful on a local socket.
  if (target.empty() || target.front() != '/') {
    return "request target must be an absolute path";
  }
  std::size_t q = target.find('?');
  auto path = PercentDecode(target.substr(0, q), /*plus_is_space=*/false);
  if (!path) return "malformed percent-encoding in request path";
  req.path = std::move(*path);
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    std::size_t amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    auto key = PercentDecode(part.substr(0, eq), /*plus_is_space=*/true);
    auto value = eq == std::string_view::npos
                     ? std::optional<std::string>(std::string())
                     : PercentDecode(part.substr(eq + 1), /*plus_is_space=*/true);
    if (!key || !value) return "malformed percent-encoding in query string";
    // First value wins, like Go's url.Values.Get, which Kubernetes clients are used to.
    req.query.emplace(std::move(*key), std::move(*value));
  }
  return std::nullopt;
}

bool IsTokenChar(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Handler-supplied headers go onto the wire verbatim (Beast does not check them), so refuse
// anything that could split the response or break its framing.
void ValidateExtraHeader(const std::string& name, const std::string& value) {
  bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
  bool value_ok = value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
  if (!name_ok || !value_ok) {
    throw Error(Errc::kInternal, "invalid response header \"" + name + "\"");
  }
  if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
      beast::iequals(name, "Connection")) {
    throw Error(Errc::kInternal, "response header \"" + name + "\" is managed by the server");
  }
}

void ValidateStatus(int status) {
  // Only final statuses: a handler answering 1xx would leave the client waiting for more.
  if (status < 200 || status > 599) {
    throw Error(Errc::kInternal, "invalid HTTP status " + std::to_string(status));
  }
}

void SetCloexec(int fd) {
  // The daemon runs external commands; they must not inherit the API sockets.
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// A SyncReadStream/SyncWriteStream over the connection socket whose reads and writes give up
// after a timeout. Beast's own timeouts (beast::basic_stream) only apply to async operations,
// and SO_RCVTIMEO does not help because Asio's synchronous read polls again on EAGAIN.
class TimedStream {
 public:
  TimedStream(Local::socket& sock, std::chrono::milliseconds timeout)
      : sock_(sock), timeout_(timeout) {}

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    if (net::buffer_size(buffers) == 0) return 0;
    if (!Wait(POLLIN, ec)) return 0;
    return sock_.read_some(buffers, ec);
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    if (net::buffer_size(buffers) == 0) return 0;
    if (!Wait(POLLOUT, ec)) return 0;
    return sock_.write_some(buffers, ec);
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  bool Wait(short events, error_code& ec) {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      int ms =
          static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, 1 << 30));
      pollfd p{sock_.native_handle(), events, 0};
      int r = ::poll(&p, 1, ms);
      // Readable, hung up or in error: the read/write itself reports which.
      if (r > 0) return true;
      if (r == 0) {
        ec = net::error::timed_out;
        return false;
      }
      if (errno != EINTR) {
        ec = error_code(errno, boost::system::system_category());
        return false;
      }
    }
  }

  Local::socket& sock_;
  std::chrono::milliseconds timeout_;
};

bool WriteStatus(TimedStream& stream, unsigned version, int code, std::string_view reason,
                 std::string_view message, bool keep_alive) {
  bhttp::response<bhttp::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(code));
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = StatusJson(code, reason, message);
  res.prepare_payload();
  error_code ec;
  bhttp::write(stream, res, ec);
  return !ec;
}

class ConnSink final : public ResponseSink {
 public:
  ConnSink(TimedStream& stream, unsigned version, bool keep_alive, bool head,
           const std::atomic<bool>& stopping)
      : stream_(stream),
        version_(version),
        keep_alive_(keep_alive),
        head_(head),
        stopping_(stopping) {}

  void Send(const Response& r) override {
    if (state_ != State::kIdle) throw Error(Errc::kInternal, "HTTP response already started");
    ValidateStatus(r.status);
    bhttp::response<bhttp::string_body> res;
    res.version(version_);
    res.result(static_cast<unsigned>(r.status));
    bool no_body = r.status == 204 || r.status == 304;
    if (!no_body && !r.content_type.empty()) {
      res.set(bhttp::field::content_type, r.content_type);
    }
    for (const auto& [name, value] : r.headers) {
      ValidateExtraHeader(name, value);
      res.insert(name, value);
    }
    res.keep_alive(keep_alive_ && !stopping_);
    if (!no_body) res.body() = r.body;
    res.prepare_payload();
    // HEAD gets the headers of the GET answer, Content-Length included, but no body.
    if (head_) res.body().clear();
    state_ = State::kSent;
    error_code ec;
    bhttp::write(stream_, res, ec);
    ok_ = !ec;
  }

  bool BeginStream(int status, const std::string& content_type) override {
    if (state_ != State::kIdle) throw Error(Errc::kInternal, "HTTP response already started");
    ValidateStatus(status);
    state_ = State::kStreaming;
    if (stopping_) return ok_ = false;
    bhttp::response<bhttp::empty_body> res;
    res.version(version_);
    res.result(static_cast<unsigned>(status));
    if (!content_type.empty()) res.set(bhttp::field::content_type, content_type);
    res.keep_alive(keep_alive_);
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    error_code ec;
    bhttp::write_header(stream_, sr, ec);
    return ok_ = !ec;
  }

  bool Write(std::string_view chunk) override {
    if (state_ != State::kStreaming) throw Error(Errc::kInternal, "Write() before BeginStream()");
    if (!ok_ || stopping_) return ok_ = false;
    // A zero-length chunk is the end-of-stream marker on the wire; never emit one here.
    if (chunk.empty()) return true;
    error_code ec;
    net::write(stream_, bhttp::make_chunk(net::buffer(chunk.data(), chunk.size())), ec);
    return ok_ = !ec;
  }

  bool Stopping() const override { return stopping_; }

  // The handler threw.
  void Fail(std::string_view what) {
    switch (state_) {
      case State::kIdle:
        state_ = State::kSent;
        ok_ = WriteStatus(stream_, version_, 500, "InternalError", what, keep_alive_ && !stopping_);
        break;
      case State::kStreaming:
        // No last chunk: the client sees a truncated stream, not a clean end.
        ok_ = false;
        break;
      case State::kSent:
        break;  // already answered; nothing more to tell the client
    }
  }

  // The handler returned. Returns whether the connection can serve another request.
  bool Finish() {
    switch (state_) {
      case State::kIdle:
        Fail("handler returned without a response");
        break;
      case State::kStreaming:
        if (ok_ && !stopping_) {
          error_code ec;
          net::write(stream_, bhttp::make_chunk_last(), ec);
          ok_ = !ec;
        } else {
          ok_ = false;
        }
        break;
      case State::kSent:
        break;
    }
    return ok_ && keep_alive_ && !stopping_;
  }

 private:
  enum class State { kIdle, kSent, kStreaming };

  TimedStream& stream_;
  unsigned version_;
  bool keep_alive_;
  bool head_;
  const std::atomic<bool>& stopping_;
  State state_ = State::kIdle;
  bool ok_ = true;
};

struct Conn {
  Conn(Local::socket s, const PeerCred& p) : sock(std::move(s)), peer(p) {}
  std::mutex mu;  // orders the owner's close() against Stop()'s and Evict()'s shutdown()
  Local::socket sock;
  const PeerCred peer;
  bool closed = false;  // under mu
  // Waiting for the next request (under mu), since when: what eviction may take.
  bool idle = true;
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
  std::thread thread;
  std::atomic<bool> done{false};
  std::atomic<bool> evicted{false};  // shut down to make room; no longer counted
};

void SetIdle(Conn& c, bool idle) {
  std::lock_guard lk(c.mu);
  if (idle && !c.idle) c.idle_since = std::chrono::steady_clock::now();
  c.idle = idle;
}

// Wakes the connection's thread out of its read; the thread then closes and ends.
bool EvictIfIdle(Conn& c) {
  std::lock_guard lk(c.mu);
  if (c.closed || !c.idle) return false;
  c.evicted = true;
  ::shutdown(c.sock.native_handle(), SHUT_RDWR);
  return true;
}

void CloseConn(Conn& c) {
  std::lock_guard lk(c.mu);
  error_code ec;
  c.sock.shutdown(Local::socket::shutdown_both, ec);
  c.sock.close(ec);
  c.closed = true;
}

}  // namespace

struct UnixHttpServer::Impl {
  Impl(ServerOptions o, Handler h, Authorizer a)
      : opts(std::move(o)), handler(std::move(h)), authorize(std::move(a)) {}

  void Start();
  void Stop();
  void DoAccept();
  void OnAccept(const error_code& ec, Local::socket sock);
  void Admit(Local::socket sock, const PeerCred& peer);
  bool MakeRoomLocked(uid_t uid);
  void ReapLocked();
  void Serve(Conn& c);
  void ServeConnection(Conn& c);
  bool ServeOne(bhttp::request<bhttp::string_body>& msg, const PeerCred& peer, TimedStream& stream);
  void LingerClose(Conn& c, TimedStream& stream);

  ServerOptions opts;
  Handler handler;
  Authorizer authorize;

  std::mutex state_mu;  // serialises Start() and Stop()
  bool started = false;
  bool stopped = false;
  std::atomic<bool> stopping{false};

  net::io_context ioc;
  Local::acceptor acceptor{ioc};
  net::steady_timer retry_timer{ioc};
  RefusalPool refusals{ioc, kMaxRefusals};
  std::thread accept_thread;

  std::mutex conns_mu;
  std::list<std::shared_ptr<Conn>> conns;

  // Identity of the socket file we created, so Stop() never unlinks a successor's socket.
  bool have_inode = false;
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;
};

namespace {

void CreateParentDirs(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> missing;
  for (auto p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) break;
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      throw SystemError("creating directory " + it->string(), errno);
    }
    // mkdir() applies the umask; the directory should be traversable regardless.
    ::chmod(it->c_str(), 0755);
  }
}

bool SomeoneIsListening(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  // EAGAIN: the listener's backlog is full, so it is very much alive.
  bool live = r == 0 || errno == EAGAIN || errno == EINPROGRESS;
  ::close(fd);
  return live;
}

void RemoveStaleSocket(const std::filesystem::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw SystemError("checking " + path.string(), errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    throw Error(Errc::kConflict,
                path.string() + " exists and is not a socket; refusing to replace it");
  }
  if (SomeoneIsListening(path.string())) {
    throw Error(Errc::kConflict, "another process is already serving on " + path.string());
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw SystemError("removing stale socket " + path.string(), errno);
  }
}

Error FromEc(const std::string& what, const error_code& ec) {
  return Error(Errc::kIo, what + ": " + ec.message());
}

bool GetPeerCred(int fd, PeerCred& peer) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  return true;
}

}  // namespace

void UnixHttpServer::Impl::Start() {
  std::lock_guard lk(state_mu);
  const std::string path = opts.socket_path.string();
  if (started) throw Error(Errc::kConflict, "HTTP server on " + path + " was already started");
  if (path.empty()) throw Error(Errc::kInvalid, "HTTP server socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw Error(Errc::kInvalid, "socket path " + path + " is too long (max " +
                                    std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  }
  CreateParentDirs(opts.socket_path.parent_path());
  RemoveStaleSocket(opts.socket_path);

  error_code ec;
  acceptor.open(Local(), ec);
  if (ec) throw FromEc("creating socket for " + path, ec);
  SetCloexec(acceptor.native_handle());
  acceptor.bind(Local::endpoint(path), ec);
  if (ec) {
    acceptor.close(ec);
    throw FromEc("binding " + path, ec);
  }
  // Nobody can connect before listen(), so chmod-ing in between leaves no window with the
  // umask-derived mode.
  auto fail = [&](Error e) {
    error_code ignored;
    acceptor.close(ignored);
    ::unlink(path.c_str());
    throw e;
  };
  if (::chmod(path.c_str(), opts.socket_mode) != 0) fail(SystemError("chmod " + path, errno));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    have_inode = true;
    sock_dev = st.st_dev;
    sock_ino = st.st_ino;
  }
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail(FromEc("listening on " + path, ec));

  started = true;
  DoAccept();
  try {
    accept_thread = std::thread([this] {
      try {
        ioc.run();
      } catch (...) {
        // Accept handlers catch everything; nothing sensible is left to do here.
      }
    });
  } catch (const std::system_error& e) {
    started = false;
    fail(Error(Errc::kInternal, std::string("starting HTTP accept thread: ") + e.what()));
  }
}

void UnixHttpServer::Impl::DoAccept() {
  acceptor.async_accept(
      [this](const error_code& ec, Local::socket sock) { OnAccept(ec, std::move(sock)); });
}

void UnixHttpServer::Impl::OnAccept(const error_code& ec, Local::socket sock) {
  if (stopping) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // EMFILE and friends: back off instead of spinning on a persistent failure.
    retry_timer.expires_after(std::chrono::milliseconds(100));
    retry_timer.async_wait([this](const error_code& e) {
      if (!e && !stopping) DoAccept();
    });
    return;
  }
  SetCloexec(sock.native_handle());
  // Who the peer is decides everything else, before it may cost a thread or a slot.
  PeerCred peer;
  if (!GetPeerCred(sock.native_handle(), peer)) return DoAccept();  // sock closes
  bool allowed = true;
  if (authorize) {
    try {
      allowed = authorize(peer);
    } catch (...) {
      allowed = false;  // fail closed
    }
  }
  if (allowed) {
    Admit(std::move(sock), peer);
  } else {
    refusals.Refuse(std::move(sock), 403, "Forbidden",
                    "uid " + std::to_string(peer.uid) +
                        " is not allowed to use the lifecycle-agent API (root only)");
  }
  DoAccept();
}

void UnixHttpServer::Impl::Admit(Local::socket sock, const PeerCred& peer) {
  std::lock_guard lk(conns_mu);
  ReapLocked();
  if (!MakeRoomLocked(peer.uid)) {
    refusals.Refuse(std::move(sock), 503, "ServiceUnavailable",
                    "too many connections from uid " + std::to_string(peer.uid) +
                        " to the lifecycle-agent API; close idle ones and retry");
    return;
  }
  auto conn = std::make_shared<Conn>(std::move(sock), peer);
  // Out of threads, dropping the connection (conn's destructor closes it) is all we can do.
  try {
    Conn* c = conn.get();
    conn->thread = std::thread([this, c] { Serve(*c); });
    conns.push_back(std::move(conn));
  } catch (const std::system_error&) {
  }
}

// Within both limits, possibly by evicting the oldest idle connection (of `uid` when it is at
// its own limit, else of the uid holding the most). False: nothing idle to give up.
bool UnixHttpServer::Impl::MakeRoomLocked(uid_t uid) {
  std::map<uid_t, std::size_t> per_uid;
  std::size_t total = 0;
  for (const auto& c : conns) {
    if (c->done || c->evicted) continue;
    ++per_uid[c->peer.uid];
    ++total;
  }
  std::optional<uid_t> victim_uid;
  if (per_uid[uid] >= kMaxConnectionsPerUid) {
    victim_uid = uid;
  } else if (total >= kMaxConnections) {
    victim_uid = std::max_element(per_uid.begin(), per_uid.end(), [](const auto& a, const auto& b) {
                   return a.second < b.second;
                 })->first;
  } else {
    return true;
  }
  std::vector<std::pair<std::chrono::steady_clock::time_point, Conn*>> candidates;
  for (const auto& c : conns) {
    if (c->done || c->evicted || c->peer.uid != *victim_uid) continue;
    std::lock_guard cl(c->mu);
    if (c->idle) candidates.emplace_back(c->idle_since, c.get());
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [since, c] : candidates) {
    if (EvictIfIdle(*c)) return true;
  }
  return false;
}

void UnixHttpServer::Impl::ReapLocked() {
  for (auto it = conns.begin(); it != conns.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = conns.erase(it);
    } else {
      ++it;
    }
  }
}

void UnixHttpServer::Impl::Serve(Conn& c) {
  try {
    ServeConnection(c);
  } catch (...) {
    // Nothing may escape a thread; the connection is simply closed.
  }
  CloseConn(c);
  c.done = true;
}

void UnixHttpServer::Impl::ServeConnection(Conn& c) {
  const PeerCred& peer = c.peer;
  TimedStream stream(c.sock, opts.idle_timeout);
  beast::flat_buffer buffer;

  while (!stopping) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(opts.max_body_bytes);
    error_code ec;
    SetIdle(c, true);
    bhttp::read_header(stream, buffer, parser, ec);
    SetIdle(c, false);
    if (!ec && !parser.is_done()) {
      // curl and others wait (briefly) for this before sending a large body.
      if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, parser.get().version()};
        bhttp::write(stream, cont, ec);
        if (ec) return;
      }
      bhttp::read(stream, buffer, parser, ec);
    }
    if (ec) {
      // The peer went away, timed out, or the server is stopping: nobody to answer.
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return;
      if (ec == bhttp::error::body_limit) {
        WriteStatus(stream, 11, 413, "RequestEntityTooLarge",
                    "request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes",
                    false);
        LingerClose(c, stream);
      } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
        WriteStatus(stream, 11, 400, "BadRequest", "malformed HTTP request: " + ec.message(),
                    false);
        LingerClose(c, stream);
      }
      return;
    }
    if (!ServeOne(parser.get(), peer, stream)) {
      LingerClose(c, stream);
      return;
    }
  }
}

bool UnixHttpServer::Impl::ServeOne(bhttp::request<bhttp::string_body>& msg, const PeerCred& peer,
                                    TimedStream& stream) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (const auto& field : msg) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    auto [it, inserted] = req.headers.emplace(name, std::string(field.value()));
    if (!inserted) {
      // Repeated fields are equivalent to one comma-joined field (RFC 9110 5.3).
      it->second += ", ";
      it->second.append(field.value().data(), field.value().size());
    }
  }
  req.body = std::move(msg.body());
  req.peer = peer;
  const bool keep_alive = msg.keep_alive();
  const unsigned version = msg.version();

  if (auto bad = ParseTarget(req)) {
    return WriteStatus(stream, version, 400, "BadRequest", *bad, keep_alive && !stopping) &&
           keep_alive;
  }

  ConnSink sink(stream, version, keep_alive, msg.method() == bhttp::verb::head, stopping);
  try {
    handler(req, sink);
  } catch (const std::exception& e) {
    sink.Fail(e.what());
  } catch (...) {
    sink.Fail("unknown exception in request handler");
  }
  return sink.Finish();
}

void UnixHttpServer::Impl::LingerClose(Conn& c, TimedStream& stream) {
  error_code ec;
  c.sock.shutdown(Local::socket::shutdown_send, ec);
  // Drain what the client may still be sending (say, the rest of an oversized body): closing
  // with unread data can make the client fail on its write before it reads our answer.
  auto deadline = std::chrono::steady_clock::now() + kLingerTime;
  std::size_t total = 0;
  char buf[16 * 1024];
  while (total < kLingerBytes && !stopping) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    stream.set_timeout(left);
    std::size_t n = stream.read_some(net::buffer(buf), ec);
    if (ec) break;
    total += n;
  }
}

void UnixHttpServer::Impl::Stop() {
  std::lock_guard lk(state_mu);
  if (!started || stopped) return;
  stopped = true;
  stopping = true;

  ioc.stop();
  if (accept_thread.joinable()) accept_thread.join();
  error_code ec;
  acceptor.close(ec);
  refusals.CloseAll();

  // The accept thread is gone, so the list can only shrink now.
  std::list<std::shared_ptr<Conn>> all;
  {
    std::lock_guard cl(conns_mu);
    all.swap(conns);
  }
  // shutdown() rather than close(): it wakes a thread blocked in read or write on the fd without
  // the fd number being reused under it.
  for (auto& c : all) {
    std::lock_guard cl(c->mu);
    if (!c->closed) ::shutdown(c->sock.native_handle(), SHUT_RDWR);
  }
  for (auto& c : all) {
    if (c->thread.joinable()) c->thread.join();
  }
  all.clear();

  if (have_inode) {
    struct stat st;
    if (::lstat(opts.socket_path.c_str(), &st) == 0 && st.st_dev == sock_dev &&
        st.st_ino == sock_ino) {
      ::unlink(opts.socket_path.c_str());
    }
  }
}

UnixHttpServer::UnixHttpServer(ServerOptions opts, Handler handler, Authorizer authorize)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(handler), std::move(authorize))) {}

UnixHttpServer::~UnixHttpServer() { Stop(); }

void UnixHttpServer::Start() { impl_->Start(); }

void UnixHttpServer::Stop() { impl_->Stop(); }

}  // namespace lca::http
