#pragma once
// Kubernetes mode on or off, from the config: a kubeconfig, or the in-cluster service account
// when the daemon runs in a pod.
#include <memory>

#include "agent/daemon/config.hpp"
#include "agent/kube/cluster_sync.hpp"

namespace lca {

class ObjectStore;

// nullptr when no cluster is configured. Throws lca::Error kInvalid for a kubeconfig that
// cannot be used (naming the file and field). Does not contact the API server: the daemon
// serves the local API whether or not the server is up.
std::unique_ptr<kube::ClusterSync> MakeClusterSync(const DaemonConfig& cfg, ObjectStore& store);

}  // namespace lca
