#pragma once
// The Kubernetes-mode connection as metrics show it (agent/kube/cluster_sync.hpp keeps it;
// `lcactl status` prints a line from the samples):
//   lca_kube_connected{server}                      1 while the last API call succeeded
//   lca_kube_last_sync_timestamp_seconds            the last time the CR and the node agreed
//   lca_kube_errors_total{reason}                   failed API calls by reason (Unauthorized,
//                                                   Forbidden, Unreachable, Conflict, ...)
//   lca_kube_last_error_timestamp_seconds{reason}   the newest failure and its reason
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lca::metrics {

struct ClusterConnection {
  std::string server;
  bool connected = false;
  int64_t last_sync = 0;  // unix seconds; 0 = never
  std::map<std::string, uint64_t> errors;
  std::string last_error_reason;  // empty = none since start
  int64_t last_error = 0;         // unix seconds
  bool operator==(const ClusterConnection&) const = default;
};

struct ParsedSample;
// Back from the samples (lcactl); nullopt when the daemon is not in Kubernetes mode.
std::optional<ClusterConnection> ClusterFromSamples(const std::vector<ParsedSample>& samples);

}  // namespace lca::metrics
