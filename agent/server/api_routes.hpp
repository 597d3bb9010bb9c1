#pragma once
// The daemon's Kubernetes-shaped API on its Unix socket:
//   GET   /apis/lca.openshift.io/v1/imagebasedupgrades[?watch=true&resourceVersion=N]
//   GET   /apis/lca.openshift.io/v1/imagebasedupgrades/upgrade[?watch=true]
//   PATCH /apis/lca.openshift.io/v1/imagebasedupgrades/upgrade   (application/merge-patch+json)
//   POST  /apis/lca.openshift.io/v1/imagebasedupgrades           (AlreadyExists / not a singleton)
//   GET   /healthz, /version, /metrics (Prometheus text, when the daemon provides it)
//   GET   /lca/v1/paths: where the daemon keeps its state, sysroot and config (must-gather)
// Errors are Kubernetes Status objects, so `lcactl` (and curl users) see what `oc` would show.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/server/unix_http_server.hpp"
#include "common/json_yaml.hpp"

namespace lca {

class ObjectStore;

inline constexpr const char* kApiCollectionPath = "/apis/lca.openshift.io/v1/imagebasedupgrades";
inline constexpr const char* kPathsPath = "/lca/v1/paths";

struct ApiOptions {
  std::string agent_version;
  // Watch streams send a BOOKMARK this often so a vanished client is noticed.
  std::chrono::milliseconds watch_heartbeat{std::chrono::seconds(10)};
  // GET /metrics: the Prometheus exposition (agent/metrics); unset = 404.
  std::function<std::string()> metrics;
  // GET /lca/v1/paths: {"stateDir", "sysroot", "configFile", "configDir", "containersRoot"};
  // null = 404. Paths only, never a secret: `lcactl must-gather` reads them to gather there.
  Json paths;
};

// A Kubernetes Status failure body.
Json StatusBody(int code, const std::string& reason, const std::string& message);

http::Handler MakeApiHandler(ObjectStore& store, ApiOptions opts);

// Root, and the daemon's own uid (so an unprivileged development run can be driven by the
// same user); anyone else is refused.
http::Authorizer MakeRootAuthorizer();

}  // namespace lca
