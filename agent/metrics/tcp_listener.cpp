#include "agent/metrics/tcp_listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "agent/metrics/exposition.hpp"
#include "common/error.hpp"

namespace lca::metrics {
namespace {

constexpr size_t kMaxRequest = 8192;
constexpr int kRequestTimeoutMs = 5000;

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the scraper went away; nothing to do
    off += static_cast<size_t>(n);
  }
}

std::string Reply(int code, const char* reason, std::string_view ctype, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason +
         "\r\nContent-Type: " + std::string(ctype) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

}  // namespace

ListenAddress ParseListenAddress(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kInvalid, "metrics address '" + text + "': " + why +
                                     " (want HOST:PORT with an IP address, e.g. 127.0.0.1:9101)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw bad("no port");
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw bad("bad port");
  const unsigned long p = std::stoul(port);
  if (p > 65535) throw bad("bad port");
  if (host.empty()) host = "127.0.0.1";
  if (host.front() == '[') {
    if (host.back() != ']') throw bad("unbalanced brackets");
    host = host.substr(1, host.size() - 2);
  }
  ListenAddress a;
  a.host = host;
  a.port = static_cast<uint16_t>(p);
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    a.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    a.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    throw bad("the host is not an IP address");
  }
  return a;
}

TcpMetricsListener::TcpMetricsListener(ListenAddress address, std::function<std::string()> render)
    : address_(std::move(address)), render_(std::move(render)) {}

TcpMetricsListener::~TcpMetricsListener() { Stop(); }

void TcpMetricsListener::Start() {
  const std::string where =
      "metrics listener on " + address_.host + ":" + std::to_string(address_.port);
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (::inet_pton(AF_INET, address_.host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) ==
      1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address_.port);
    len = sizeof(sockaddr_in);
  } else {
    family = AF_INET6;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET6, address_.host.c_str(), &sin6->sin6_addr) != 1)
      throw Error(Errc::kInvalid, where + ": bad address");
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(address_.port);
    len = sizeof(sockaddr_in6);
  }
  listen_fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw SystemError(where + ": socket", errno);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    throw SystemError(where, err);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (::pipe2(wake_fd_, O_CLOEXEC) != 0) throw SystemError(where + ": pipe", errno);
  stopping_ = false;
  thread_ = std::thread([this] { Serve(); });
  if (!address_.loopback) {
    spdlog::warn("metrics are served on {}:{}, which is not a loopback address", address_.host,
                 port_);
  }
  spdlog::info("serving metrics on http://{}{}{}:{}/metrics", family == AF_INET6 ? "[" : "",
               address_.host, family == AF_INET6 ? "]" : "", port_);
}

void TcpMetricsListener::Stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_[1], "x", 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_fd_[0], &wake_fd_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void TcpMetricsListener::Serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics listener: poll: {}", std::strerror(errno));
      return;
    }
    if (stopping_ || (fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    try {
      Answer(fd);
    } catch (const std::exception& e) {
      spdlog::warn("metrics listener: {}", e.what());
    }
    ::close(fd);
  }
}

void TcpMetricsListener::Answer(int fd) {
  std::string req;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0 || req.size() > kMaxRequest) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  const std::string line = req.substr(0, req.find_first_of("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    WriteAll(fd, Reply(400, "Bad Request", "text/plain", "bad request\n"));
    return;
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") {
    WriteAll(fd, Reply(404, "Not Found", "text/plain", "only /metrics is served here\n"));
    return;
  }
  if (method != "GET" && method != "HEAD") {
    WriteAll(fd, Reply(405, "Method Not Allowed", "text/plain", "GET only\n"));
    return;
  }
  std::string body;
  try {
    body = render_();
  } catch (const std::exception& e) {
    WriteAll(fd, Reply(500, "Internal Server Error", "text/plain", std::string(e.what()) + "\n"));
    return;
  }
  std::string reply = Reply(200, "OK", kContentType, body);
  if (method == "HEAD") reply.resize(reply.size() - body.size());
  WriteAll(fd, reply);
}

}  // namespace lca::metrics
