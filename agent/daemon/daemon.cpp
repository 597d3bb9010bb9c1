#include "agent/daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "agent/controller/handlers/idle_handlers.hpp"
#include "agent/controller/handlers/prep_handler.hpp"
#include "agent/controller/handlers/stateroot_cleanup.hpp"
#include "agent/controller/handlers/upgrade_handler.hpp"
#include "agent/controller/reconciler.hpp"
#include "agent/daemon/kube_mode.hpp"
#include "agent/metrics/collector.hpp"
#include "agent/metrics/tcp_listener.hpp"
#include "agent/pivot/reboot.hpp"
#include "agent/server/api_routes.hpp"
#include "agent/server/unix_http_server.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/child_record.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/process.hpp"
#include "common/state_layout.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"

#ifndef LCA_VERSION
#define LCA_VERSION "0.0.0"
#endif

namespace lca {
namespace {

// The process groups of the running children (child_record.hpp).
constexpr const char* kChildrenFile = state_layout::kChildren;

// Holds an exclusive flock for the process lifetime: a second daemon on the same state dir
// would interleave writes to ibu.json and run the same host steps twice.
class InstanceLock {
 public:
  explicit InstanceLock(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw SystemError("opening lock file " + path.string(), errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {0};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      if (err == EWOULDBLOCK) {
        throw Error(
            Errc::kConflict,
            "another lifecycle-agent" +
                (n > 0 ? " (pid " + std::string(buf, strcspn(buf, "\n")) + ")" : std::string()) +
                " is running on " + path.parent_path().string() + " (it holds " + path.string() +
                ")");
      }
      throw SystemError("locking " + path.string(), err);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
      [[maybe_unused]] ssize_t w = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
  }
  ~InstanceLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

bool AfterPivot(const DaemonConfig& cfg, const api::ImageBasedUpgrade& ibu) {
  if (ibu.spec.seed_image_ref.version.empty()) return false;
  const auto cmdline = ReadFileIfExists(cfg.proc_cmdline);
  if (!cmdline) {
    throw Error(Errc::kNotFound,
                "kernel command line " + cfg.proc_cmdline.string() + " is missing");
  }
  const auto booted = stateroot::FindBooted(cfg.sysroot, *cmdline);
  if (!booted) return false;  // not booted from ostree: nothing can be after a pivot
  return booted->stateroot == stateroot::StaterootNameForVersion(ibu.spec.seed_image_ref.version);
}

// Every stateroot's state dir (<sysroot>/ostree/deploy/*/var/lib/lca): the object store starts
// its resourceVersion count above what any of them served.
std::vector<std::filesystem::path> StaterootStateDirs(const std::filesystem::path& sysroot) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(sysroot / "ostree/deploy", ec), end; !ec && it != end;
       it.increment(ec)) {
    out.push_back(it->path() / "var/lib/lca");
  }
  return out;
}

void Notify(const std::string& state) {
  // sd_notify is a no-op (returns 0) without NOTIFY_SOCKET, so this is safe outside systemd.
  const int r = sd_notify(0, state.c_str());
  if (r < 0) spdlog::warn("sd_notify({}): {}", state, std::strerror(-r));
}

}  // namespace

std::string NotifyStatusLine(const api::ImageBasedUpgrade& ibu) {
  std::string line = "stage=" + std::string(api::StageName(ibu.spec.stage));
  if (ibu.status && !ibu.status->conditions.empty()) {
    const auto& last = ibu.status->conditions.back();
    line += " state=" + last.reason + ": " + last.message;
  }
  // systemd shows one line; a multi-line failure message would be cut anyway.
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line;
}

int RunDaemon(const DaemonConfig& cfg) {
  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the daemon

  ReloadFailpoints();
  EnsureDir(cfg.state_dir, 0700);
  InstanceLock lock(cfg.state_dir / state_layout::kLock);

  spdlog::info("lifecycle-agent {} starting: sysroot={} state-dir={} socket={}", LCA_VERSION,
               cfg.sysroot.string(), cfg.state_dir.string(), cfg.socket.string());
  // Before any step resumes: a predecessor killed mid-command may have left a group (skopeo
  // still writing into the layout a resumed step would remove). Under the instance lock, so
  // these can only be a dead predecessor's.
  const std::filesystem::path children_file = cfg.state_dir / kChildrenFile;
  for (const auto& what : ReapLeftoverChildren(children_file, std::chrono::seconds(10))) {
    spdlog::warn("stopped {} left running by a previous lifecycle-agent", what);
  }
  SetChildRecordFile(children_file);
  ObjectStore store(cfg.state_dir, StaterootStateDirs(cfg.sysroot));
  StepJournal journal(cfg.state_dir);
  SystemProcessRunner runner;

  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  Reconciler::Deps deps{
      store,
      journal,
      runner,
      AgentPaths{cfg.state_dir, cfg.sysroot, cfg.config_dir, cfg.containers_root, cfg.proc_cmdline},
      [&cfg](const api::ImageBasedUpgrade& ibu) { return AfterPivot(cfg, ibu); },
      nullptr};
  if (watchdog) {
    // Pinged from the control loop itself, so a wedged loop stops the pings and systemd
    // restarts the daemon; half the interval leaves room for one late pass.
    deps.heartbeat = [] { Notify("WATCHDOG=1"); };
    deps.heartbeat_interval =
        std::chrono::milliseconds(std::max<uint64_t>(watchdog_usec / 2000, 100));
    spdlog::info("systemd watchdog every {}ms", watchdog_usec / 1000);
  }
  deps.max_step_attempts = cfg.max_step_attempts;
  // Kubernetes mode: before any stage runs, so the Reboot event is announced and Prep reads
  // the running release from ClusterVersion.
  auto cluster_sync = MakeClusterSync(cfg, store);
  PrepOptions prep;
  if (!cfg.running_version.empty()) prep.running_version = cfg.running_version;
  if (!cfg.registries_conf.empty()) prep.registries_conf = cfg.registries_conf;
  if (!cfg.signature_policy.empty()) prep.signature_policy = cfg.signature_policy;
  prep.node_pull_secret = cfg.node_pull_secret;
  prep.node.has_proxy = cfg.has_proxy;
  prep.node.release_registry = cfg.release_registry;
  prep.node.selinuxfs = cfg.selinuxfs;
  prep.node.require_shared_storage = !cfg.precache_disabled;
  if (cluster_sync) {
    prep.node.cluster_version = [sync = cluster_sync.get()] { return sync->ClusterVersion(); };
  }
  PrecacheOptions& pc = prep.precache;
  pc.podman.root = cfg.containers_root;
  pc.podman.runroot = cfg.containers_runroot;
  if (!cfg.containers_runroot.empty()) pc.podman.tmpdir = cfg.containers_runroot / "libpod-tmp";
  pc.podman.storage_driver = cfg.containers_storage_driver;
  pc.podman.registries_conf = cfg.registries_conf;
  pc.podman.signature_policy = cfg.signature_policy;
  pc.registries_conf = prep.registries_conf;
  pc.node_pull_secret = cfg.node_pull_secret;
  pc.concurrency = static_cast<size_t>(cfg.precache_concurrency);
  pc.timeout = std::chrono::seconds(cfg.precache_timeout_seconds);
  pc.best_effort = cfg.precache_best_effort;
  pc.disabled = cfg.precache_disabled;
  pc.cluster_release_registry = cfg.release_registry;
  ApplyPrecacheEnvironment(pc);  // PRECACHE_BEST_EFFORT, MAX_PULL_THREADS, as LCA's operator

  auto cleanup = std::make_shared<Cleanup>(DefaultCleanupSteps(CleanupOptions{prep.work_dir}));
  PivotOptions pivot;
  pivot.hooks_dir = cfg.hooks_dir.empty() ? cfg.config_dir / "hooks" : cfg.hooks_dir;
  pivot.hook_timeout = std::chrono::seconds(cfg.hook_timeout_seconds);
  pivot.reboot_command = cfg.reboot_command;
  pivot.systemctl = cfg.systemctl_command;
  pivot.recovery_backup = cfg.recovery_backup;
  pivot.recovery_settings = cfg.recovery_config;
  std::vector<std::unique_ptr<StageHandler>> handlers;
  handlers.push_back(std::make_unique<PrepHandler>(prep));
  handlers.push_back(std::make_unique<UpgradeHandler>(pivot));
  handlers.push_back(std::make_unique<RollbackHandler>(pivot));
  handlers.push_back(std::make_unique<AbortHandler>(cleanup));
  handlers.push_back(std::make_unique<FinalizeHandler>(cleanup));
  Reconciler reconciler(std::move(deps), std::move(handlers));
  store.SetClientChangeHook([&reconciler] { reconciler.Trigger(); });

  metrics::MetricsRecorder metrics_recorder(cfg.state_dir);
  auto render_metrics = [&store, &metrics_recorder] {
    return metrics_recorder.Render(store.Get(), Now());
  };
  if (cluster_sync) {
    metrics_recorder.SetClusterSource([&cluster_sync] { return cluster_sync->Connection(); });
    pivot::SetRebootAnnouncer(
        [&cluster_sync](const std::string& why) { cluster_sync->AnnounceReboot(why); });
  }
  ApiOptions api_opts;
  api_opts.agent_version = LCA_VERSION;
  api_opts.metrics = render_metrics;
  api_opts.paths = Json{{"stateDir", cfg.state_dir.string()},
                        {"sysroot", cfg.sysroot.string()},
                        {"configFile", cfg.config_file.string()},
                        {"configDir", cfg.config_dir.string()},
                        {"containersRoot", cfg.containers_root.string()}};
  std::unique_ptr<metrics::TcpMetricsListener> metrics_listener;
  if (!cfg.metrics_address.empty()) {
    metrics_listener = std::make_unique<metrics::TcpMetricsListener>(
        metrics::ParseListenAddress(cfg.metrics_address), render_metrics);
  }
  http::UnixHttpServer server(
      http::ServerOptions{cfg.socket, cfg.socket_mode, 1 << 20, std::chrono::seconds(60)},
      MakeApiHandler(store, api_opts), MakeRootAuthorizer());
  server.Start();
  if (metrics_listener) metrics_listener->Start();
  reconciler.Start();
  if (cluster_sync) cluster_sync->Start();

  // systemd's Status= line follows the object.
  std::atomic<bool> stop_status{false};
  std::thread status_thread([&] {
    std::string last_line;
    uint64_t seen = 0;
    while (!stop_status) {
      const auto obj = store.Get();
      seen = std::stoull(obj.metadata.resource_version);
      metrics_recorder.Observe(obj);  // rollbacks and errors are counted as they appear
      const std::string line = NotifyStatusLine(obj);
      if (line != last_line) {
        Notify("STATUS=" + line);
        last_line = line;
      }
      store.WaitForChange(seen, std::chrono::seconds(1));
    }
  });

  Notify("READY=1");
  spdlog::info("serving the ImageBasedUpgrade API on {}", cfg.socket.string());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  Notify("STOPPING=1");
  store.Shutdown();  // wakes watch streams and the status thread
  server.Stop();     // no new requests
  if (metrics_listener) metrics_listener->Stop();
  reconciler.Stop();  // a running handler stops at its next safe point
  if (cluster_sync) {
    pivot::SetRebootAnnouncer(nullptr);  // no handler runs any more
    cluster_sync->Stop();
  }
  stop_status = true;
  status_thread.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace lca
