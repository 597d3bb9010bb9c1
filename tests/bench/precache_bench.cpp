// Pre-caching throughput: our puller against the references' algorithms, each into a fresh
// containers-storage, on loopback or through an emulated far-edge link. Not part of ctest; run
// through tests/bench/precache.sh (numbers and how to read them: docs/benchmarks.md).
//
//   precache_bench [--link loopback|edge] [--images 40] [--driver overlay|vfs]
//
// Strategies (all `podman pull`, same registry, same images):
//   ours        precache::PullImages after the space plan's manifest inspection (included)
//   talm        TALM pull.sh: per image `podman image exists`, then background pulls in fixed
//               batches of 10 with a barrier after each batch
//   lca         LCA ibu-precache-workload: a window of 10 concurrent `podman pull`, one per image
//   sequential  one `podman pull` after the other
// and the second run with every image present: ours (one listing) vs lca (a pull per image) vs
// talm (an `image exists` per image).
//
// The edge link is a TCP proxy in this process: every chunk is delivered 25 ms after it was read
// (each way), and each direction is limited to 100 Mbit/s shared by all connections (tc netem is
// not available on these machines).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/puller.hpp"
#include "precache/space_plan.hpp"
#include "tests/support/image_factory.hpp"
#include "tests/support/podman_bed.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
namespace pc = lca::precache;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// ---- the emulated link ----------------------------------------------------------------------

class Link {
 public:
  Link(std::chrono::milliseconds delay, double bits_per_second)
      : delay_(delay), bps_(bits_per_second) {}

  // Blocks until `bytes` may leave in direction `dir` (0 up, 1 down).
  void Pace(int dir, size_t bytes) {
    Clock::time_point at;
    {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      if (next_[dir] < now) next_[dir] = now;
      next_[dir] += std::chrono::nanoseconds(static_cast<int64_t>(bytes * 8 * 1e9 / bps_));
      at = next_[dir];
    }
    std::this_thread::sleep_until(at);
  }
  std::chrono::milliseconds delay() const { return delay_; }

 private:
  std::chrono::milliseconds delay_;
  double bps_;
  std::mutex mu_;
  Clock::time_point next_[2]{};
};

class Proxy {
 public:
  Proxy(int target_port, Link* link) : target_(target_port), link_(link) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_, 128) != 0) {
      throw std::runtime_error("proxy: bind/listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~Proxy() {
    stop_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    acceptor_.join();
  }
  int port() const { return port_; }

 private:
  struct Chunk {
    Clock::time_point due;
    std::string data;  // empty = EOF
  };
  struct Pipe {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Chunk> q;
  };

  void Accept() {
    while (!stop_) {
      const int c = ::accept(listen_, nullptr, nullptr);
      if (c < 0) {
        if (stop_) return;
        continue;
      }
      std::thread([this, c] { Serve(c); }).detach();
    }
  }

  void Serve(int client) {
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(target_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(client);
      ::close(server);
      return;
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Pipe up, down;
    std::thread r1([&] { Read(client, up); });
    std::thread w1([&] { Write(server, up, 0); });
    std::thread r2([&] { Read(server, down); });
    std::thread w2([&] { Write(client, down, 1); });
    r1.join();
    w1.join();
    r2.join();
    w2.join();
    ::close(client);
    ::close(server);
  }

  void Read(int fd, Pipe& p) {
    std::string buf(64 * 1024, '\0');
    while (true) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      std::lock_guard lock(p.mu);
      p.q.push_back(
          Chunk{Clock::now() + link_->delay(), n > 0 ? buf.substr(0, static_cast<size_t>(n)) : ""});
      p.cv.notify_one();
      if (n <= 0) return;
    }
  }

  void Write(int fd, Pipe& p, int dir) {
    while (true) {
      Chunk c;
      {
        std::unique_lock lock(p.mu);
        p.cv.wait(lock, [&] { return !p.q.empty(); });
        c = std::move(p.q.front());
        p.q.pop_front();
      }
      std::this_thread::sleep_until(c.due);
      if (c.data.empty()) {
        ::shutdown(fd, SHUT_WR);
        return;
      }
      link_->Pace(dir, c.data.size());
      size_t off = 0;
      while (off < c.data.size()) {
        const ssize_t w = ::write(fd, c.data.data() + off, c.data.size() - off);
        if (w <= 0) {
          // The peer is gone: drain until EOF so the reader's thread ends.
          std::unique_lock lock(p.mu);
          while (true) {
            p.cv.wait(lock, [&] { return !p.q.empty(); });
            const bool eof = p.q.front().data.empty();
            p.q.pop_front();
            if (eof) return;
          }
        }
        off += static_cast<size_t>(w);
      }
    }
  }

  int target_;
  Link* link_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
};

// ---- strategies -----------------------------------------------------------------------------

struct Ctx {
  lca::SystemProcessRunner runner;
  pc::PodmanConfig podman;
  fs::path authfile;
  std::vector<std::string> images;
  lca::stateroot::RegistryAccess access;
};

lca::ProcessResult Podman(Ctx& c, const std::vector<std::string>& args) {
  return c.runner.Run(pc::PodmanSpec(c.podman, args, std::chrono::minutes(10)));
}

std::vector<std::string> PullArgs(Ctx& c, const std::string& img) {
  return {"pull",
          "--quiet",
          "--authfile",
          c.authfile.string(),
          "--signature-policy",
          c.podman.signature_policy.string(),
          "--",
          img};
}

void Check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

void Sequential(Ctx& c) {
  for (const auto& img : c.images) Check(Podman(c, PullArgs(c, img)).ok(), "pull " + img);
}

void LcaWindow(Ctx& c, size_t window) {
  std::mutex mu;
  size_t next = 0;
  bool ok = true;
  std::vector<std::thread> t;
  for (size_t i = 0; i < window; ++i) {
    t.emplace_back([&] {
      while (true) {
        size_t k;
        {
          std::lock_guard lock(mu);
          if (next == c.images.size()) return;
          k = next++;
        }
        // LCA: up to 5 attempts, no check for an image already present.
        bool done = false;
        for (int a = 0; a < 5 && !done; ++a) done = Podman(c, PullArgs(c, c.images[k])).ok();
        std::lock_guard lock(mu);
        ok = ok && done;
      }
    });
  }
  for (auto& th : t) th.join();
  Check(ok, "lca window");
}

void TalmBatches(Ctx& c, size_t batch) {
  std::vector<std::thread> running;
  bool ok = true;
  std::mutex mu;
  auto wait_all = [&] {
    for (auto& th : running) th.join();
    running.clear();
  };
  for (const auto& img : c.images) {
    if (Podman(c, {"image", "exists", "--", img}).ok()) continue;  // "Skipping existing image"
    running.emplace_back([&, img] {
      const bool r = Podman(c, PullArgs(c, img)).ok();
      std::lock_guard lock(mu);
      ok = ok && r;
    });
    if (running.size() == batch) wait_all();
  }
  wait_all();
  Check(ok, "talm batches");
}

size_t EnvSize(const char* name, size_t def) {
  const char* v = std::getenv(name);
  return v != nullptr ? static_cast<size_t>(std::stoul(v)) : def;
}

void Ours(Ctx& c) {
  const auto t0 = Clock::now();
  const pc::Inspection inspected =
      pc::InspectAll(c.runner, c.images, c.access, 10, EnvSize("LCA_BENCH_IN_PROCESS", 1) != 0);
  Check(inspected.errors.empty(), inspected.errors.empty() ? "" : inspected.errors.front());
  const auto& layers = inspected.layers;
  const auto t1 = Clock::now();
  pc::PullOptions o;
  o.authfile = c.authfile;
  o.tag_check = c.access;
  o.round_trip = inspected.SlowestRoundTrip();
  if (EnvSize("LCA_BENCH_ADAPT", 1) == 0) o.round_trip.reset();
  // Knobs for exploring the design space (docs/benchmarks.md); defaults are the product's.
  o.window = EnvSize("LCA_BENCH_WINDOW", o.window);
  o.max_chunk = EnvSize("LCA_BENCH_MAX_CHUNK", o.max_chunk);
  o.primer_min_layer_bytes = EnvSize("LCA_BENCH_PRIMER_MIN", o.primer_min_layer_bytes);
  const auto r = pc::PullImages(c.runner, c.podman, pc::ToPullItems(c.images, layers), o, nullptr);
  Check(r.failed.empty(), "ours: " + r.DescribeFailures());
  std::printf(
      "  ours: inspect %.2f s (%zu in-process, %zu by skopeo; round trip %s), pull %.2f s, "
      "%llu podman processes (%s)\n",
      std::chrono::duration<double>(t1 - t0).count(), inspected.in_process, inspected.by_skopeo,
      o.round_trip ? (std::to_string(o.round_trip->count() / 1000.0) + " ms").c_str() : "unknown",
      std::chrono::duration<double>(Clock::now() - t1).count(),
      static_cast<unsigned long long>(r.processes),
      r.near_registry ? "near registry: one process" : "window");
}

// `tag_check` as the product does: present tag images are checked against the registry
// (stale_tags.hpp), one manifest GET each.
void OursRerun(Ctx& c, bool tag_check) {
  pc::PullOptions o;
  o.authfile = c.authfile;
  if (tag_check) o.tag_check = c.access;
  std::vector<pc::PullItem> items;
  for (const auto& i : c.images) items.push_back(pc::PullItem{i, {}, {}, 0});
  const auto r = pc::PullImages(c.runner, c.podman, items, o, nullptr);
  Check(r.skipped.size() == c.images.size(), "ours rerun skipped all");
}

double Seconds(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

uint64_t DiskUsage(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) n += it->file_size(ec);
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string link = "loopback", driver = "overlay";
  int n_images = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--link")
      link = v;
    else if (k == "--images")
      n_images = std::stoi(v);
    else if (k == "--driver")
      driver = v;
  }
  try {
    lca::test::EnterPrivateVarLib();
    lca::test::TempDir tmp("lca-precache-bench");
    lca::test::LocalRegistry registry;
    lca::test::ImagePusher push(registry.address());
    // 40 images: an 8 MiB base layer shared by 32 of them, own layers of 64 KiB .. 4 MiB.
    const std::string base = lca::test::TarOf({{"base", lca::test::RandomBytes(8 << 20, 1)}});
    const size_t sizes[] = {64 << 10, 256 << 10, 1 << 20, 4 << 20};
    std::unique_ptr<Link> l;
    std::unique_ptr<Proxy> proxy;
    std::string address = registry.address();
    if (link == "edge") {
      l = std::make_unique<Link>(25ms, 100e6);
      proxy = std::make_unique<Proxy>(std::stoi(address.substr(address.find(':') + 1)), l.get());
      address = "127.0.0.1:" + std::to_string(proxy->port());
    }
    uint64_t total = base.size();
    std::vector<std::string> images;
    for (int i = 0; i < n_images; ++i) {
      std::vector<std::string> layers;
      if (i % 5 != 4) layers.push_back(base);
      const std::string own = lca::test::TarOf(
          {{"app", lca::test::RandomBytes(sizes[i % 4], 100 + static_cast<uint32_t>(i))}});
      layers.push_back(own);
      total += own.size();
      const auto p = push.Push("bench/app" + std::to_string(i), "v1", layers);
      images.push_back(i % 2 == 0 ? address + "/bench/app" + std::to_string(i) + "@" + p.digest
                                  : address + "/bench/app" + std::to_string(i) + ":v1");
    }
    const fs::path conf = tmp / "registries.conf";
    lca::WriteFileAtomic(conf,
                         "[[registry]]\nlocation = \"" + registry.address() +
                             "\"\ninsecure = true\n[[registry]]\nlocation = \"" + address +
                             "\"\ninsecure = true\n",
                         0644);
    const fs::path auth = tmp / "auth.json";
    lca::WriteFileAtomic(auth, "{\"auths\":{}}\n", 0600);
    std::printf(
        "precache bench: %d images, %.1f MiB distinct (one %.0f MiB base in %d of them), link %s, "
        "driver %s\n",
        n_images, static_cast<double>(total) / (1 << 20),
        static_cast<double>(base.size()) / (1 << 20), n_images - n_images / 5, link.c_str(),
        driver.c_str());

    int store = 0;
    auto fresh = [&](Ctx& c) {
      c.podman = lca::test::IsolatedPodman(tmp / ("store" + std::to_string(++store)), conf,
                                           registry.policy_json(), driver);
      c.authfile = auth;
      c.images = images;
      c.access.registries_conf = conf;
      c.access.authfile = auth;
    };
    std::map<std::string, double> t;
    std::map<std::string, double> rerun;
    std::map<std::string, uint64_t> disk;
    const std::vector<std::pair<std::string, std::function<void(Ctx&)>>> strategies = {
        {"ours", Ours},
        {"talm", [](Ctx& c) { TalmBatches(c, 10); }},
        {"lca", [](Ctx& c) { LcaWindow(c, 10); }},
        {"sequential", Sequential}};
    const char* only = std::getenv("LCA_BENCH_ONLY");
    for (const auto& [name, f] : strategies) {
      if (only != nullptr && name != only) continue;
      Ctx c;
      fresh(c);
      t[name] = Seconds([&] { f(c); });
      disk[name] = DiskUsage(c.podman.root);
      std::printf("  %-10s %7.2f s   (store %.0f MiB)\n", name.c_str(), t[name],
                  static_cast<double>(disk[name]) / (1 << 20));
      std::fflush(stdout);
      if (name == "ours") {
        rerun["ours"] = Seconds([&] { OursRerun(c, true); });
        std::printf("  ours, all present, without the tag check: %.2f s\n",
                    Seconds([&] { OursRerun(c, false); }));
      }
      if (name == "lca") rerun["lca"] = Seconds([&] { LcaWindow(c, 10); });
      if (name == "talm") rerun["talm"] = Seconds([&] { TalmBatches(c, 10); });
    }
    const double best_fixed = std::min({t["talm"], t["lca"], t["sequential"]});
    std::printf("ratios (time / ours): talm %.2f, lca %.2f, sequential %.2f\n",
                t["talm"] / t["ours"], t["lca"] / t["ours"], t["sequential"] / t["ours"]);
    std::printf("ours / best fixed strategy: %.2f (target <= 0.80)\n", t["ours"] / best_fixed);
    std::printf(
        "all present again: ours %.2f s, lca %.2f s, talm %.2f s; ours / lca %.3f (target <= "
        "0.10)\n",
        rerun["ours"], rerun["lca"], rerun["talm"], rerun["ours"] / rerun["lca"]);
    std::printf("on-disk expansion (%s): %.2f x the distinct compressed bytes\n", driver.c_str(),
                static_cast<double>(disk["ours"]) / static_cast<double>(total));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "precache_bench: %s\n", e.what());
    return 1;
  }
}
