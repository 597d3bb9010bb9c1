#pragma once
// A TCP proxy on 127.0.0.1 in front of a test server (the registry) that slows what the server
// sends down to a rate, so a test can catch a client (skopeo) in the middle of a transfer.
// Tests only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace lca::test {

class ThrottledProxy {
 public:
  // `target` is "127.0.0.1:<port>".
  ThrottledProxy(const std::string& target, std::size_t bytes_per_second)
      : rate_(bytes_per_second) {
    target_port_ = static_cast<uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)));
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Loopback(0);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("ThrottledProxy: cannot listen");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~ThrottledProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    std::lock_guard lk(mu_);
    for (auto& t : pumps_) t.join();
  }
  ThrottledProxy(const ThrottledProxy&) = delete;
  ThrottledProxy& operator=(const ThrottledProxy&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // 0: no limit from now on.
  void SetRate(std::size_t bytes_per_second) { rate_ = bytes_per_second; }
  // Bytes the server has sent through the proxy so far.
  std::size_t sent() const { return sent_; }

 private:
  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }

  void AcceptLoop() {
    while (!stop_) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Loopback(target_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      std::lock_guard lk(mu_);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  // Both directions on one thread; server-to-client in slices paced to the rate.
  void Pump(int client, int server) {
    char buf[4096];
    while (!stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      if (p[0].revents != 0) {
        const ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n <= 0 || ::send(server, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
      }
      if (p[1].revents != 0) {
        const std::size_t rate = rate_;
        const std::size_t slice = rate == 0 ? sizeof buf : std::min(sizeof buf, rate / 10 + 1);
        const ssize_t n = ::recv(server, buf, slice, 0);
        if (n <= 0 || ::send(client, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        sent_ += static_cast<std::size_t>(n);
        if (rate != 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(1000000LL * n / rate));
        }
      }
    }
    ::close(client);
    ::close(server);
  }

  std::atomic<std::size_t> rate_;
  std::atomic<std::size_t> sent_{0};
  std::atomic<bool> stop_{false};
  uint16_t target_port_ = 0;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::thread> pumps_;
};

}  // namespace lca::test
