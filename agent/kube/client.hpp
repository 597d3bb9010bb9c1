#pragma once
// The one narrow seam to the Kubernetes API server: the few calls the agent makes, on API
// paths ("/apis/lca.openshift.io/v1/imagebasedupgrades/upgrade"). The production client is
// libcurl over TLS (MakeCurlClient); tests run it against the API server stand-in.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agent/kube/credentials.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"

namespace lca::kube {

// An answer other than 2xx (http_status > 0, reason from the Status body: "Conflict",
// "Expired", "Unauthorized") or no answer at all (http_status 0: connect, TLS, timeout).
class ApiError : public Error {
 public:
  ApiError(Errc code, int http_status, std::string reason, const std::string& message)
      : Error(code, message), http_status_(http_status), reason_(std::move(reason)) {}
  int http_status() const { return http_status_; }
  const std::string& reason() const { return reason_; }

 private:
  int http_status_;
  std::string reason_;
};

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  // GET of an object or a collection (a list, with `?fieldSelector=...` in the path).
  virtual Json Get(const std::string& path) = 0;
  // POST to a collection.
  virtual Json Create(const std::string& collection, const Json& object) = 0;
  // PATCH application/merge-patch+json; a metadata.resourceVersion in the patch is the
  // precondition (409 Conflict when stale).
  virtual Json MergePatch(const std::string& path, const Json& patch) = 0;
  // The status subresource of the object at `path`.
  Json PatchStatus(const std::string& path, const Json& patch) {
    return MergePatch(path + "/status", patch);
  }
  // A core/v1 Event in `ns`.
  void CreateEvent(const std::string& ns, const Json& event) {
    Create("/api/v1/namespaces/" + ns + "/events", event);
  }
  // GET with watch=true: each event ({"type", "object"}) goes to on_event until the server
  // ends the stream, on_event returns false, or `stop` is set. Throws ApiError when the
  // request is refused or the connection breaks.
  virtual void Watch(const std::string& path_and_query,
                     const std::function<bool(const Json&)>& on_event,
                     const std::atomic<bool>& stop) = 0;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  // A watch stream that delivers nothing (not even a bookmark) for this long is dead.
  std::chrono::seconds watch_idle_timeout{150};
  std::string user_agent = "lifecycle-agent";
};

std::unique_ptr<KubeClient> MakeCurlClient(Credentials creds, ClientOptions opts = {});

// "?a=b&c=d" values as URLs need them.
std::string UrlEscape(const std::string& s);

}  // namespace lca::kube
