#pragma once
// The opt-in TCP endpoint Prometheus scrapes (config metricsAddress / --metrics-address):
// GET /metrics answers the exposition, anything else 404; one request per connection.
//
// Deliberately tiny: a scrape every few seconds from one collector. One thread accepts and
// answers in turn; a client gets 5 s to send its request, so a stuck one delays the next scrape
// at most that long. It serves only metrics (no object, no secrets) and binds loopback unless an
// operator names another address.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace lca::metrics {

struct ListenAddress {
  std::string host;  // an IPv4 or IPv6 literal
  uint16_t port = 0;
  bool loopback = true;
};
// "127.0.0.1:9101", "[::1]:9101", ":9101" (= 127.0.0.1:9101), "0.0.0.0:9101". Host names are
// refused (no resolver at boot); kInvalid names the text.
ListenAddress ParseListenAddress(const std::string& text);

class TcpMetricsListener {
 public:
  TcpMetricsListener(ListenAddress address, std::function<std::string()> render);
  ~TcpMetricsListener();
  TcpMetricsListener(const TcpMetricsListener&) = delete;
  TcpMetricsListener& operator=(const TcpMetricsListener&) = delete;

  // Binds and starts serving; throws lca::Error naming the address.
  void Start();
  void Stop();
  uint16_t port() const { return port_; }  // the bound port (useful with port 0)

 private:
  void Serve();
  void Answer(int fd);

  ListenAddress address_;
  std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lca::metrics
