#pragma once
// A real etcd on loopback for the tests that back it up (recovery, the Upgrade's pre-pivot
// backup): its own data dir, free ports, torn down with the object.
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/process.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/run_cmd.hpp"

namespace lca::test {

class EtcdServer {
 public:
  EtcdServer(const std::filesystem::path& data_dir, const std::filesystem::path& log,
             int peer_port = 0)
      : client_port_(FreePort()), peer_port_(peer_port != 0 ? peer_port : FreePort()) {
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    proc_.Start(
        {"/usr/bin/etcd", "--name", "default", "--data-dir", data_dir.string(),
         "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls",
         peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer},
        {}, log.string());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (Ctl({"endpoint", "health"}).code != 0) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("etcd not healthy");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~EtcdServer() { Stop(); }
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  void Stop() {
    proc_.Signal(SIGTERM);
    if (!proc_.Wait(std::chrono::seconds(20))) proc_.Signal(SIGKILL);
    proc_.Wait(std::chrono::seconds(5));
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  CmdResult Ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {"etcdctl", "--endpoints=" + endpoint()});
    return RunCmd(args, {{"ETCDCTL_API", "3"}});
  }
  // Throws on failure: a test's set-up, not its assertion.
  void Put(const std::string& k, const std::string& v) const {
    const auto r = Ctl({"put", k, v});
    if (r.code != 0) throw std::runtime_error("etcdctl put " + k + ": " + r.err);
  }
  std::string Get(const std::string& k) const {
    return Trim(Ctl({"get", "--print-value-only", k}).out);
  }

 private:
  int client_port_, peer_port_;
  ChildProcess proc_;
};

}  // namespace lca::test
