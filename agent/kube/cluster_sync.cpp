#include "agent/kube/cluster_sync.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "agent/store/object_store.hpp"
#include "common/atomic_file.hpp"

namespace lca::kube {
namespace {

const std::string kCollection =
    "/apis/" + std::string(api::kGroup) + "/v1/" + std::string(api::kPlural);
constexpr int kAttempts = 5;

int64_t UnixNow() {
  return std::chrono::system_clock::now().time_since_epoch() / std::chrono::seconds(1);
}

// The cluster's mirrored part in the node's canonical form (the spec through the node's model,
// so defaults and field order agree). Throws kInvalid for a spec the node cannot hold.
Json NormalizedMirror(const Json& cluster) {
  Json m = Canonical(MirroredPart(cluster));
  m["spec"] = Canonical(api::SpecToJson(api::SpecFromJson(m["spec"])));
  return m;
}

Json NodeMirror(const api::ImageBasedUpgrade& node) {
  return Canonical(MirroredPart(api::ToJson(node)));
}

std::string Rv(const Json& obj) {
  return obj.value("metadata", Json::object()).value("resourceVersion", "");
}
std::string Uid(const Json& obj) { return obj.value("metadata", Json::object()).value("uid", ""); }
int64_t Generation(const Json& obj) {
  return obj.value("metadata", Json::object()).value("generation", int64_t{0});
}

bool IsStatus(const Error& e, int code) {
  const auto* api_error = dynamic_cast<const ApiError*>(&e);
  return api_error && api_error->http_status() == code;
}

}  // namespace

ClusterSync::ClusterSync(ObjectStore& store, std::shared_ptr<KubeClient> client, SyncOptions opts)
    : store_(store),
      client_(std::move(client)),
      opts_(std::move(opts)),
      path_(kCollection + "/" + std::string(api::kName)),
      collection_(kCollection) {
  conn_.server = opts_.server;
  if (opts_.base_file.empty()) return;
  try {
    if (const auto text = ReadFileIfExists(opts_.base_file)) {
      const Json j = ParseJson(*text, opts_.base_file.string());
      base_ = Base{j.at("uid").get<std::string>(), j.at("mirrored")};
    }
  } catch (const std::exception& e) {
    // Losing the base only means the cluster's spec wins at the next list.
    spdlog::warn("Kubernetes sync: ignoring {}: {}", opts_.base_file.string(), e.what());
  }
}

ClusterSync::~ClusterSync() { Stop(); }

void ClusterSync::Start() {
  last_announced_ = store_.Get().status;
  spdlog::info("Kubernetes mode: mirroring {} on {} ({})", path_, opts_.server, opts_.identity);
  watcher_ = std::thread([this] { WatchLoop(); });
  pusher_ = std::thread([this] { PushLoop(); });
}

void ClusterSync::Stop() {
  stop_ = true;
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (pusher_.joinable()) pusher_.join();
}

metrics::ClusterConnection ClusterSync::Connection() const {
  std::lock_guard lock(state_mu_);
  return conn_;
}

void ClusterSync::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(state_mu_);
  stop_cv_.wait_for(lock, d, [&] { return stop_.load(); });
}

void ClusterSync::Succeeded() {
  std::lock_guard lock(state_mu_);
  if (!conn_.connected) spdlog::info("Kubernetes API server {}: connected", opts_.server);
  conn_.connected = true;
}

// Every failure is counted; the log gets a warning when the reason changes (a retry loop
// against a server that is down must not flood the journal).
void ClusterSync::Failed(const Error& e, const std::string& what) {
  const auto* api_error = dynamic_cast<const ApiError*>(&e);
  const std::string reason = api_error ? api_error->reason() : std::string(ErrcName(e.code()));
  std::string hint;
  if (api_error && (api_error->http_status() == 401 || api_error->http_status() == 403)) {
    hint = " (the API server refused the agent's identity from " + opts_.identity +
           ": renew the token or fix its RBAC; the node's work goes on and the agent keeps "
           "retrying)";
  }
  std::lock_guard lock(state_mu_);
  const bool news = conn_.connected || conn_.last_error_reason != reason;
  conn_.connected = false;
  ++conn_.errors[reason];
  conn_.last_error_reason = reason;
  conn_.last_error = UnixNow();
  if (news) {
    spdlog::warn("Kubernetes API server {}: {}: {}{}", opts_.server, what, e.what(), hint);
  } else {
    spdlog::debug("Kubernetes API server {}: still failing: {}: {}", opts_.server, what, e.what());
  }
}

void ClusterSync::SetBase(const std::string& uid, const Json& mirrored) {
  if (base_ && base_->uid == uid && base_->mirrored == mirrored) return;
  base_ = Base{uid, mirrored};
  if (opts_.base_file.empty()) return;
  try {
    WriteFileAtomic(opts_.base_file, Json{{"uid", uid}, {"mirrored", mirrored}}.dump() + "\n",
                    0600);
  } catch (const std::exception& e) {
    spdlog::warn("Kubernetes sync: saving {}: {}", opts_.base_file.string(), e.what());
  }
}

}  // namespace lca::kube

namespace lca::kube {

void ClusterSync::WatchLoop() {
  WatchCursor cursor{std::string(api::kName)};
  Backoff backoff(opts_.backoff_min, opts_.backoff_max);
  while (!stop_) {
    try {
      if (!cursor.CanWatch()) ListAndReconcile(cursor);
      const auto started = std::chrono::steady_clock::now();
      WatchOnce(cursor);
      // A server that ends every watch at once must not be asked again in a tight loop.
      if (std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
        SleepFor(backoff.Next());
      } else {
        backoff.Reset();
      }
    } catch (const Error& e) {
      Failed(e, cursor.CanWatch() ? "watching " + path_ : "listing " + collection_);
      // After an error nothing says the version is still served: list again.
      cursor.Reset();
      SleepFor(backoff.Next());
    } catch (const std::exception& e) {
      Failed(Error(Errc::kInternal, e.what()), "syncing " + path_);
      cursor.Reset();
      SleepFor(backoff.Next());
    }
  }
}

void ClusterSync::ListAndReconcile(WatchCursor& cursor) {
  const Json list = client_->Get(collection_ + cursor.ListQuery());
  std::optional<Json> found;
  for (const auto& item : list.value("items", Json::array())) {
    if (item.value("metadata", Json::object()).value("name", "") == api::kName) found = item;
  }
  const bool created = !found;
  if (created) found = CreateFromNode();
  cursor.Listed(list.value("metadata", Json::object()).value("resourceVersion", ""));
  Succeeded();
  std::lock_guard lock(mu_);
  // A new list starts a new stream: nothing older is pending, except our own create's event.
  awaiting_rv_ = created ? Rv(*found) : std::string();
  ReconcileLocked(*found);
}

// As the Go operator (reference §1.6): the CR is created from the node's object (on a fresh
// node that is spec.stage Idle and nothing else); status follows through the subresource.
Json ClusterSync::CreateFromNode() {
  const auto node = store_.Get();
  Json md = {{"name", api::kName}};
  if (!node.metadata.labels.empty()) md["labels"] = node.metadata.labels;
  if (!node.metadata.annotations.empty()) md["annotations"] = node.metadata.annotations;
  const Json obj = {{"apiVersion", api::kApiVersion},
                    {"kind", api::kKind},
                    {"metadata", md},
                    {"spec", api::SpecToJson(node.spec)}};
  try {
    Json created = client_->Create(collection_, obj);
    spdlog::info("Kubernetes: created {} from the node's object (spec.stage {})", path_,
                 api::StageName(node.spec.stage));
    return created;
  } catch (const Error& e) {
    if (!IsStatus(e, 409)) throw;
    return client_->Get(path_);  // created meanwhile by someone else
  }
}

void ClusterSync::WatchOnce(WatchCursor& cursor) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  const int timeout = opts_.watch_timeout_seconds + std::uniform_int_distribution<int>(0, 60)(rng);
  std::exception_ptr failure;
  client_->Watch(
      collection_ + cursor.WatchQuery(timeout),
      [&](const Json& event) {
        const WatchStep step = cursor.OnEvent(event);
        switch (step.kind) {
          case WatchStep::kContinue:
            return true;
          case WatchStep::kObject:
            try {
              ReconcileEvent(step.object);
            } catch (...) {
              failure = std::current_exception();  // never through curl's C frames
              return false;
            }
            return !stop_.load();
          case WatchStep::kDeleted:
            spdlog::warn("Kubernetes: {} was deleted; recreating it from the node's object", path_);
            cursor.Reset();
            return false;
          case WatchStep::kRelist:
            spdlog::info("Kubernetes: {}; listing again", step.message);
            return false;
          case WatchStep::kError:
            failure = std::make_exception_ptr(
                ApiError(Errc::kUnavailable, 0, "WatchError", step.message));
            return false;
        }
        return false;
      },
      stop_);
  if (failure) std::rethrow_exception(failure);
  Succeeded();
}

void ClusterSync::PushLoop() {
  uint64_t seen = store_.ResourceVersion();
  Backoff backoff(opts_.backoff_min, opts_.backoff_max);
  auto next_try = std::chrono::steady_clock::now();
  while (!stop_ && !store_.IsShutdown()) {
    const uint64_t now_version = store_.WaitForChange(seen, std::chrono::seconds(1));
    const bool changed = now_version != seen;
    seen = now_version;
    if (!changed && !dirty_) continue;
    if (std::chrono::steady_clock::now() < next_try) {
      dirty_ = true;
      continue;
    }
    dirty_ = false;
    try {
      std::lock_guard lock(mu_);
      if (!cluster_) continue;  // not listed yet: the watcher reconciles when it lists
      ReconcileLocked(*cluster_);
      backoff.Reset();
    } catch (const std::exception& e) {
      const auto* err = dynamic_cast<const Error*>(&e);
      Failed(err ? *err : Error(Errc::kInternal, e.what()), "writing " + path_);
      dirty_ = true;
      next_try = std::chrono::steady_clock::now() + backoff.Next();
    }
  }
}

void ClusterSync::ReconcileEvent(Json cluster) {
  std::lock_guard lock(mu_);
  if (!awaiting_rv_.empty()) {
    if (Rv(cluster) == awaiting_rv_) awaiting_rv_.clear();
    return;  // the cached CR is this event's object or newer
  }
  ReconcileLocked(std::move(cluster));
}

void ClusterSync::NoteWriteLocked(const std::string& before_rv, const Json& after) {
  // A write that changed nothing keeps its resourceVersion and sends no event to wait for.
  if (Rv(after) != before_rv) awaiting_rv_ = Rv(after);
}

void ClusterSync::ReconcileLocked(Json cluster) {
  cluster_ = cluster;
  const bool in_sync = MirrorLocked(cluster);
  cluster_ = cluster;
  PushStatusLocked(cluster, in_sync);
  cluster_ = cluster;
  EmitEventsLocked(cluster);
  Succeeded();
  std::lock_guard lock(state_mu_);
  last_cluster_ = cluster;
  if (in_sync) conn_.last_sync = UnixNow();
  if (!in_sync) dirty_ = true;  // e.g. the node refuses patches while it reboots: retry
}

}  // namespace lca::kube

namespace lca::kube {

// Brings spec, labels and annotations together (mirror.hpp's rules). Returns whether both
// sides now agree; `cluster` is updated with what the server answered.
bool ClusterSync::MirrorLocked(Json& cluster) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const Json node = NodeMirror(store_.Get());
    Json from_cluster;
    try {
      from_cluster = NormalizedMirror(cluster);
    } catch (const Error& e) {
      // A spec the node's model cannot hold (an unknown stage: the stand-in or a server
      // without the CRD's schema let it through): refused like any invalid change.
      spdlog::warn("Kubernetes: the spec of {} is not valid here ({}); putting the node's back",
                   path_, e.what());
      SetBase(Uid(cluster), Canonical(MirroredPart(cluster)));
      from_cluster = Canonical(MirroredPart(cluster));
    }
    switch (Decide(base_, Uid(cluster), from_cluster, node)) {
      case Flow::kNone:
        SetBase(Uid(cluster), node);
        return true;
      case Flow::kToNode:
        if (!ApplyToNodeLocked(cluster, node, from_cluster)) return false;
        break;
      case Flow::kToCluster: {
        Json patch = AsObjectPatch(MergeDiff(from_cluster, node));
        patch["metadata"]["resourceVersion"] = Rv(cluster);
        try {
          const std::string before = Rv(cluster);
          cluster = client_->MergePatch(path_, patch);
          NoteWriteLocked(before, cluster);
          spdlog::info("Kubernetes: wrote the node's spec/metadata to {}: {}", path_, patch.dump());
          SetBase(Uid(cluster), node);
        } catch (const Error& e) {
          if (!IsStatus(e, 409)) throw;
          cluster = client_->Get(path_);
        }
        break;
      }
    }
  }
  return false;
}

// The cluster's change enters the node through the local API's admission (ObjectStore's
// ApplyMergePatch): what it refuses is refused here too, and a stage outside validNextStages
// is answered by the controller with InvalidTransition, as a local patch would be. Returns
// false when the node cannot take changes now (sealed for the reboot): try again later.
bool ClusterSync::ApplyToNodeLocked(const Json& cluster, const Json& node, const Json& wanted) {
  const Json patch = AsObjectPatch(MergeDiff(node, wanted));
  try {
    const auto result = store_.ApplyMergePatch(patch);
    for (const auto& w : result.warnings)
      spdlog::info("Kubernetes: change accepted with warning: {}", w);
    spdlog::info("Kubernetes: applied the cluster's change to the node: {}", patch.dump());
    SetBase(Uid(cluster), wanted);
    return true;
  } catch (const Error& e) {
    if (e.code() == Errc::kConflict) {
      spdlog::debug("Kubernetes: the node cannot take the cluster's change yet: {}", e.what());
      return false;
    }
    spdlog::warn(
        "Kubernetes: the cluster's change to {} was refused, putting the node's back: "
        "{}",
        path_, e.what());
    try {
      client_->CreateEvent(opts_.event_namespace,
                           EventObject({"Warning", "ChangeRefused", e.what()}, cluster,
                                       opts_.event_namespace, opts_.host, Now()));
    } catch (const Error& ev) {
      spdlog::debug("Kubernetes: event: {}", ev.what());
    }
    // With the base at the cluster's version the node's side is the changed one: the next
    // round writes it back to the CR.
    SetBase(Uid(cluster), wanted);
    return true;
  }
}

void ClusterSync::PushStatusLocked(Json& cluster, bool in_sync) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto node = store_.Get();
    if (!node.status) return;
    const Json want = Canonical(StatusForCluster(node, Generation(cluster), in_sync));
    const Json have = Canonical(cluster.value("status", Json::object()));
    if (want == have) return;
    const Json patch = {{"metadata", {{"resourceVersion", Rv(cluster)}}},
                        {"status", MergeDiff(have, want)}};
    try {
      const std::string before = Rv(cluster);
      cluster = client_->PatchStatus(path_, patch);
      NoteWriteLocked(before, cluster);
      return;
    } catch (const Error& e) {
      if (!IsStatus(e, 409)) throw;
      spdlog::debug("Kubernetes: status of {}: conflict, reading it again", path_);
      cluster = client_->Get(path_);
    }
  }
  throw ApiError(Errc::kConflict, 409, "Conflict",
                 "status of " + path_ + ": still conflicting after " + std::to_string(kAttempts) +
                     " attempts");
}

void ClusterSync::EmitEventsLocked(const Json& cluster) {
  const auto node = store_.Get();
  if (!last_announced_) last_announced_ = node.status;
  if (auto ev = StateEvent(*last_announced_, node.status)) {
    client_->CreateEvent(opts_.event_namespace,
                         EventObject(*ev, cluster, opts_.event_namespace, opts_.host, Now()));
  }
  last_announced_ = node.status;
}

void ClusterSync::AnnounceReboot(const std::string& rationale) {
  Json cluster;
  {
    std::lock_guard lock(state_mu_);
    if (!conn_.connected) {
      spdlog::info("Kubernetes: not connected; no Reboot event for the {} reboot", rationale);
      return;
    }
    cluster = last_cluster_;
  }
  try {
    client_->CreateEvent(
        opts_.event_namespace,
        EventObject({"Normal", "Reboot", "System will now reboot for " + rationale}, cluster,
                    opts_.event_namespace, opts_.host, Now()));
  } catch (const Error& e) {
    Failed(e, "sending the Reboot event");
  }
}

std::optional<std::string> ClusterSync::ClusterVersion() {
  constexpr const char* kPath = "/apis/config.openshift.io/v1/clusterversions/version";
  try {
    const Json cv = client_->Get(kPath);
    const Json* v = &cv;
    for (const char* key : {"status", "desired", "version"}) {
      if (!v->is_object() || !v->contains(key)) return std::nullopt;
      v = &(*v)[key];
    }
    if (!v->is_string() || v->get<std::string>().empty()) return std::nullopt;
    return v->get<std::string>();
  } catch (const ApiError& e) {
    if (e.http_status() == 404) return std::nullopt;
    throw Error(e.code(),
                "reading ClusterVersion 'version' from " + opts_.server + ": " + e.what());
  }
}

}  // namespace lca::kube
