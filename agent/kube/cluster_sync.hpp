#pragma once
// Kubernetes mode: the cluster's imagebasedupgrades.lca.openshift.io/upgrade mirrored into the
// node-local object and back (agent/kube/mirror.hpp has the rules). Two threads:
//   watcher  lists the CR (creating it from the node's object when absent), then watches it
//            from the list's resourceVersion with bookmarks; a stream that ends is resumed
//            from the last version, 410 Gone lists again, failures back off with jitter.
//   pusher   wakes on every change of the node-local object and writes it to the CR: status
//            through the status subresource with a resourceVersion precondition (409: read
//            again, retry), stage transitions as Events.
// Spec, labels and annotations from the cluster enter the node through ObjectStore's
// ApplyMergePatch, the same admission the local API uses. The node-local store stays the
// source of truth: nothing here blocks the daemon, and the API server may be away for as long
// as it likes (a pivot, a restart, a revoked token).
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/kube/client.hpp"
#include "agent/kube/mirror.hpp"
#include "agent/kube/watch_cursor.hpp"
#include "agent/metrics/cluster.hpp"

namespace lca {
class ObjectStore;
}

namespace lca::kube {

struct SyncOptions {
  std::string server;    // shown in metrics and logs
  std::string identity;  // where the credentials come from (Credentials::source), for errors
  std::string event_namespace = "default";  // where Events about a cluster-scoped object go
  std::string host;                         // the Events' source host (the node name)
  int watch_timeout_seconds = 300;          // plus up to 60 s of jitter per watch
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
  // <state-dir>/kube-sync.json: the base of the three-way merge, so a restarted daemon knows
  // which side changed while it was down.
  std::filesystem::path base_file;
};

class ClusterSync {
 public:
  ClusterSync(ObjectStore& store, std::shared_ptr<KubeClient> client, SyncOptions opts);
  ~ClusterSync();
  ClusterSync(const ClusterSync&) = delete;
  ClusterSync& operator=(const ClusterSync&) = delete;

  void Start();
  void Stop();

  metrics::ClusterConnection Connection() const;

  // The "Reboot" Event ("System will now reboot for <rationale>"), sent before the reboot is
  // requested when the API server is reachable; best effort.
  void AnnounceReboot(const std::string& rationale);

  // The cluster's running release for Prep (stateroot::ClusterVersionProvider): ClusterVersion
  // `version`'s .status.desired.version, nullopt when the API server has no such object (not an
  // OpenShift cluster). Throws lca::Error naming the server when it cannot be read: a Prep on a
  // cluster must not compare against a guessed version.
  std::optional<std::string> ClusterVersion();

 private:
  void WatchLoop();
  void PushLoop();
  void ListAndReconcile(WatchCursor& cursor);
  void WatchOnce(WatchCursor& cursor);
  // Both directions against `cluster` (the CR as last read); with mu_ held.
  // A watch event: skipped while it is older than what our own last write returned.
  void ReconcileEvent(Json cluster);
  // After a write that returned `after` for a request made at `before_rv`.
  void NoteWriteLocked(const std::string& before_rv, const Json& after);
  void ReconcileLocked(Json cluster);
  bool MirrorLocked(Json& cluster);
  bool ApplyToNodeLocked(const Json& cluster, const Json& node, const Json& wanted);
  void PushStatusLocked(Json& cluster, bool in_sync);
  void EmitEventsLocked(const Json& cluster);
  Json CreateFromNode();
  void SetBase(const std::string& uid, const Json& mirrored);
  void Succeeded();
  void Failed(const Error& e, const std::string& what);
  void SleepFor(std::chrono::milliseconds d);

  ObjectStore& store_;
  std::shared_ptr<KubeClient> client_;
  SyncOptions opts_;
  std::string path_;        // the CR
  std::string collection_;  // imagebasedupgrades

  std::mutex mu_;  // one reconcile at a time; guards what follows
  std::optional<Json> cluster_;
  std::optional<Base> base_;
  // The resourceVersion our last write produced, until its watch event arrives: the events
  // before it are older than the cached CR (which the write's answer refreshed), and
  // reconciling against them would only earn a 409.
  std::string awaiting_rv_;
  std::optional<std::optional<api::Status>> last_announced_;

  mutable std::mutex state_mu_;
  metrics::ClusterConnection conn_;
  Json last_cluster_;  // for the Reboot event, readable while mu_ is held by a slow call
  std::condition_variable stop_cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> dirty_{false};
  std::thread watcher_, pusher_;
};

}  // namespace lca::kube
