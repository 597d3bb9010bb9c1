// The load an idle lifecycle-agent in Kubernetes mode puts on the API server (issue 17: goal
// at most 1 request per minute besides the watch). The real daemon on a throwaway 4.14.1 host,
// the API server stand-in with a real server's bookmark interval (60 s), the stand-in's request
// log counted over a window after the start-up sync settled.
// Usage: kube_idle_bench [MINUTES]   (default 5; results in docs/benchmarks.md)
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "common/atomic_file.hpp"
#include "tests/support/kube_standin.hpp"
#include "tests/support/test_sysroot.hpp"

namespace {

using lca::test::KubeStandin;

const std::string kDaemon = std::string(LCA_TEST_BINARY_DIR) + "/agent/daemon/lifecycle-agent";

int Run(double minutes) {
  lca::test::TempDir dir("lca-kube-bench");
  lca::test::TestSysroot host(dir / "host");
  KubeStandin kube;  // bookmarks every 60 s, as a real API server
  lca::WriteFileAtomic(dir / "none.yaml", "", 0644);
  lca::test::ChildProcess daemon;
  daemon.Start(
      {kDaemon, "--config", (dir / "none.yaml").string(), "--sysroot", host.sysroot().string(),
       "--proc-cmdline", host.cmdline_file().string(), "--state-dir", (dir / "state").string(),
       "--socket", (dir / "lca.sock").string(), "--config-dir", (dir / "etc").string(),
       "--kubeconfig", kube.kubeconfig().string(), "--reboot-command", "/bin/false"},
      {{"HOME", (dir / "home").string()}}, (dir / "daemon.log").string());
  // Settled: the CR exists with the node's status.
  for (int i = 0; i < 300; ++i) {
    const auto r = kube.Http("GET", "/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade");
    if (r.code == 200 && r.Json().contains("status")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const double t0 = KubeStandin::NowSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(minutes * 60));
  const double t1 = KubeStandin::NowSeconds();
  const auto all = kube.RequestsSince(t0, /*with_watches=*/true);
  int watches = 0, others = 0;
  for (const auto& r : all) {
    if (r.time > t1) continue;
    if (r.watch) {
      ++watches;
    } else {
      ++others;
      std::cout << "  non-watch request: " << r.method << " " << r.path << "?" << r.query << " -> "
                << r.code << "\n";
    }
  }
  daemon.Signal(SIGTERM);
  daemon.Wait(std::chrono::seconds(30));
  const double window = (t1 - t0) / 60;
  std::printf(
      "idle window: %.2f min\nwatch requests started: %d (%.2f/min)\n"
      "other requests: %d (%.2f/min; goal <= 1/min)\n",
      window, watches, watches / window, others, others / window);
  return others / window <= 1.0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc > 1 ? std::atof(argv[1]) : 5.0); }
