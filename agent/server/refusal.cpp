#include "agent/server/refusal.hpp"

#include <sys/socket.h>

#include <boost/asio/steady_timer.hpp>
#include <cerrno>

#include "common/json_yaml.hpp"
#include "common/text_excerpt.hpp"

namespace lca::http {
namespace {

namespace net = boost::asio;
using Local = net::local::stream_protocol;
using boost::system::error_code;

// A peer we will not serve gets little patience: this long to send its request head, and as
// long again to read our answer while we drop what it still sends.
constexpr std::chrono::milliseconds kPatience{1000};
constexpr std::size_t kDrainBytes = 4 << 20;

const char* ReasonPhrase(int code) {
  switch (code) {
    case 403:
      return "Forbidden";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// Reads what is there without blocking; returns bytes read, or -1 at EOF or on an error.
long ReadAvailable(int fd) {
  char buf[16 * 1024];
  long total = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      total += n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return total;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}

}  // namespace

struct RefusalPool::Refusal {
  Refusal(Local::socket s, net::io_context& ioc) : sock(std::move(s)), timer(ioc) {}
  Local::socket sock;
  net::steady_timer timer;
  std::string response;
  std::size_t drained = 0;
  std::list<std::shared_ptr<Refusal>>::iterator self;
};

std::string StatusJson(int code, std::string_view reason, std::string_view message) {
  const Json status = {{"kind", "Status"},
                       {"apiVersion", "v1"},
                       {"metadata", Json::object()},
                       {"status", "Failure"},
                       {"message", Excerpt(message, 4096)},
                       {"reason", Excerpt(reason, 200)},
                       {"code", code}};
  return status.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string StatusResponse(int code, const std::string& reason, const std::string& message) {
  const std::string body = StatusJson(code, reason, message);
  return "HTTP/1.1 " + std::to_string(code) + " " + ReasonPhrase(code) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

void RefusalPool::Refuse(Local::socket sock, int code, std::string reason, std::string message) {
  // Over the limit the socket's destructor closes it: the peer sees EOF, and we spend nothing.
  if (refusals_.size() >= limit_) return;
  auto r = std::make_shared<Refusal>(std::move(sock), ioc_);
  r->response = StatusResponse(code, reason, message);
  r->self = refusals_.insert(refusals_.end(), r);
  r->timer.expires_after(kPatience);
  r->timer.async_wait([r](const error_code& ec) {
    if (!ec) {
      error_code ignored;
      r->sock.cancel(ignored);  // the peer sent nothing in time: answer anyway
    }
  });
  r->sock.async_wait(Local::socket::wait_read, [this, r](const error_code&) { Answer(r); });
}

void RefusalPool::Answer(const std::shared_ptr<Refusal>& r) {
  if (!r->sock.is_open()) return Finish(r);
  const int fd = r->sock.native_handle();
  ReadAvailable(fd);  // the request head, so the peer is reading when the answer comes
  // A few hundred bytes into an empty socket buffer: one non-blocking send is enough, and if
  // it is not, the peer was not listening anyway.
  (void)::send(fd, r->response.data(), r->response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  r->timer.expires_after(kPatience);  // cancels the first wait if it is still pending
  r->timer.async_wait([r](const error_code& ec) {
    if (!ec) {
      error_code ignored;
      r->sock.cancel(ignored);
    }
  });
  Drain(r);
}

// Closing with unread data can make the peer fail its write before it reads the answer, so what
// it still sends (the rest of a body) is read and dropped until EOF, the limit or the timer.
void RefusalPool::Drain(const std::shared_ptr<Refusal>& r) {
  r->sock.async_wait(Local::socket::wait_read, [this, r](const error_code& ec) {
    if (ec || !r->sock.is_open()) return Finish(r);
    const long n = ReadAvailable(r->sock.native_handle());
    if (n < 0) return Finish(r);
    r->drained += static_cast<std::size_t>(n);
    if (r->drained >= kDrainBytes) return Finish(r);
    Drain(r);
  });
}

void RefusalPool::Finish(const std::shared_ptr<Refusal>& r) {
  error_code ignored;
  r->timer.cancel();
  r->sock.close(ignored);
  if (r->self != refusals_.end()) {
    refusals_.erase(r->self);
    r->self = refusals_.end();
  }
}

void RefusalPool::CloseAll() {
  for (auto& r : refusals_) {
    error_code ignored;
    r->timer.cancel();
    r->sock.close(ignored);
    r->self = refusals_.end();
  }
  refusals_.clear();
}

}  // namespace lca::http
