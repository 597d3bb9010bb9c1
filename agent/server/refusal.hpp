#pragma once
// Answering a connection we will not serve (a peer the authorizer refuses, or one over its
// connection limit) without giving it a thread or a connection slot: everything happens
// asynchronously on the acceptor's io_context, bounded in time (a second to send its request
// head, a second to drain after the answer) and in number (RefusalPool's limit; past it the
// connection is closed unanswered).
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <string_view>

namespace lca::http {

class RefusalPool {
 public:
  // `limit`: refusals in flight at once. Used only from the io_context's thread.
  RefusalPool(boost::asio::io_context& ioc, std::size_t limit) : ioc_(ioc), limit_(limit) {}

  // Reads (and drops) what the peer sends for up to a second, answers `code` with a Kubernetes
  // Status body, drains for up to a second more so the peer can read the answer, then closes.
  void Refuse(boost::asio::local::stream_protocol::socket sock, int code, std::string reason,
              std::string message);

  // Closes every refusal in flight; for Stop(), after the io_context's thread has ended.
  void CloseAll();

  std::size_t InFlight() const { return refusals_.size(); }

  struct Refusal;

 private:
  void Answer(const std::shared_ptr<Refusal>& r);
  void Drain(const std::shared_ptr<Refusal>& r);
  void Finish(const std::shared_ptr<Refusal>& r);

  boost::asio::io_context& ioc_;
  std::size_t limit_;
  std::list<std::shared_ptr<Refusal>> refusals_;
};

// A Kubernetes Status failure object as JSON text. The message is made printable UTF-8 and cut
// (Excerpt), as it may quote input.
std::string StatusJson(int code, std::string_view reason, std::string_view message);

// The bytes of a complete HTTP/1.1 response carrying a Kubernetes Status failure, with
// Connection: close.
std::string StatusResponse(int code, const std::string& reason, const std::string& message);

}  // namespace lca::http
