#pragma once
// HTTP/1.1 server on a Unix domain socket, built on Boost.Beast.
//
// The daemon has a handful of local clients (the CLI, maybe a watcher), so the design favours
// simplicity over scale: one acceptor thread and one thread per connection doing synchronous
// Beast reads and writes with keep-alive. Access control is by peer credentials (SO_PEERCRED),
// on top of the socket file's mode, checked on the acceptor thread right after accept(): a
// refused peer is answered 403 asynchronously (a few at a time, a second each; refusal.hpp) and
// never holds a thread or a connection slot, so a flood of refused connections cannot starve
// permitted ones. Permitted peers get at most 32 connections per uid and 256 in all; past that
// a new connection replaces the oldest idle one (of its uid, or of the uid holding the most), or
// is answered 503 when none is idle. Idle keep-alive connections close after idle_timeout.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lca::http {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Request {
  std::string method;                          // "GET", "PATCH", ...
  std::string target;                          // raw target incl. query
  std::string path;                            // target without query, percent-decoded
  std::map<std::string, std::string> query;    // decoded query params (first value wins)
  std::map<std::string, std::string> headers;  // keys lower-cased; repeats joined by ", "
  std::string body;
  PeerCred peer;                                          // from SO_PEERCRED on the connection
  std::string Header(std::string_view lower_name) const;  // "" if absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers, e.g. {"Warning", "299 - \"...\""}. Names must be HTTP tokens and values must
  // not contain CR/LF (Send() throws otherwise) so a handler cannot split the response.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Lets a handler answer once, or stream (chunked transfer encoding) for watches.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // Writes a complete response. Calling it twice, or after BeginStream(), throws kInternal.
  virtual void Send(const Response& r) = 0;
  // Starts a chunked response; then Write() each chunk. Returns false once the peer has gone
  // (write failed or the client closed its end), so the handler can stop.
  virtual bool BeginStream(int status, const std::string& content_type) = 0;
  // An empty chunk is a no-op: on the wire it would mean "end of stream".
  virtual bool Write(std::string_view chunk) = 0;
  // True when the server is stopping; streaming handlers must check it and return promptly.
  virtual bool Stopping() const = 0;
};

// Called on the connection's thread, so possibly concurrently for different connections.
using Handler = std::function<void(const Request&, ResponseSink&)>;
// false -> 403 with a Kubernetes Status body, then the connection is closed. Checked once per
// connection, on the acceptor thread (so it must be quick). An empty Authorizer admits every
// peer the socket file's mode lets in.
using Authorizer = std::function<bool(const PeerCred&)>;

struct ServerOptions {
  std::filesystem::path socket_path;
  mode_t socket_mode = 0600;
  std::size_t max_body_bytes = 1 << 20;   // larger -> 413
  std::chrono::seconds idle_timeout{60};  // keep-alive connections idle this long are closed
};

class UnixHttpServer {
 public:
  UnixHttpServer(ServerOptions opts, Handler handler, Authorizer authorize);
  ~UnixHttpServer();  // Stop()

  UnixHttpServer(const UnixHttpServer&) = delete;
  UnixHttpServer& operator=(const UnixHttpServer&) = delete;

  // Creates the parent dir if missing (0755), removes a stale socket file (only if it IS a
  // socket nobody is listening on; anything else -> lca::Error kConflict naming the path), binds,
  // chmods to socket_mode, listens, and starts serving on background threads. Throws lca::Error.
  void Start();

  // Stops accepting, wakes streaming handlers (Stopping() becomes true), closes connections,
  // joins threads, removes the socket file (if it is still ours). Idempotent. Must not be called
  // from inside a handler: it waits for every handler to return.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lca::http
