#pragma once
// The list/watch protocol (Kubernetes API concepts, "Efficient detection of changes"), apart
// from the network so it is unit-tested: a watch starts at the resourceVersion of the last
// list or event, moves on with every event and BOOKMARK, and a 410 Gone (ERROR event or
// reply) means that version was compacted away: list again.
#include <chrono>
#include <random>
#include <string>

#include "common/json_yaml.hpp"

namespace lca::kube {

struct WatchStep {
  enum Kind {
    kContinue,  // a bookmark or another object: nothing to do but remember the version
    kObject,    // ADDED/MODIFIED of the watched object: reconcile against it
    kDeleted,   // the watched object was deleted: list again (and recreate it)
    kRelist,    // 410 Gone: the version is too old
    kError,     // an ERROR event other than 410, or a malformed event: message says which
  };
  Kind kind = kContinue;
  Json object;
  std::string message;
};

class WatchCursor {
 public:
  explicit WatchCursor(std::string name) : name_(std::move(name)) {}

  // After a list: the list's metadata.resourceVersion.
  void Listed(const std::string& resource_version) { rv_ = resource_version; }
  void Reset() { rv_.clear(); }
  const std::string& resource_version() const { return rv_; }
  bool CanWatch() const { return !rv_.empty(); }

  WatchStep OnEvent(const Json& event);

  // "?watch=true&resourceVersion=..&allowWatchBookmarks=true&timeoutSeconds=..&fieldSelector=.."
  std::string WatchQuery(int timeout_seconds) const;
  std::string ListQuery() const;

 private:
  std::string name_;
  std::string rv_;
};

// Exponential backoff with full jitter: each delay is uniform in [d/2, d], d doubling from
// `min` up to `max`; Reset() after a success.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max,
          uint32_t seed = std::random_device{}())
      : min_(min), max_(max), next_(min), rng_(seed) {}
  std::chrono::milliseconds Next();
  void Reset() { next_ = min_; }

 private:
  std::chrono::milliseconds min_, max_, next_;
  std::mt19937 rng_;
};

}  // namespace lca::kube
