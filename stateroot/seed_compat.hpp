#pragma once
// The seed compatibility checks a node can make on its own (reference-lca §3.3), before
// anything is fetched: the seed's seed_cluster_info label against this node's facts. Each
// mismatch fails Prep with the Go operator's message ("checking seed image compatibility: ..."),
// followed by where this node's fact came from and what to do.
#include <optional>
#include <string>
#include <vector>

#include "stateroot/seed_format.hpp"

namespace lca::stateroot {

struct NodeFacts {
  bool has_proxy = false;
  std::string proxy_source;  // "HTTPS_PROXY in <file>", "hasProxy setting", "no proxy.env"
  bool has_fips = false;
  std::string fips_source;  // "fips=1 on <cmdline file>", ...
  // The container storage mountpoint target (precache/storage_mount.hpp); nullopt = not
  // determined, which the storage check reports by itself.
  std::optional<std::string> storage_target;
  // For the seed release-registry override (reference-lca §4.1): the cluster's release
  // registry (the releaseRegistry setting; empty = unknown) and its mirror sources.
  std::string release_registry;
  std::vector<std::string> mirror_sources;
};

// Throws lca::Error kInvalid on the first mismatch. `seed` nullopt (an old seed without the
// label): proxy and FIPS are taken as false and the other checks are skipped, as the Go
// operator does.
void CheckSeedCompatibility(const std::optional<SeedClusterInfo>& seed, const NodeFacts& node);

// Whether the kernel command line asks for FIPS mode (fips=1).
bool CmdlineHasFips(std::string_view cmdline);

// Whether an environment file (KEY=value lines, as /etc/mco/proxy.env) sets HTTP_PROXY,
// HTTPS_PROXY or NO_PROXY (either case) to something non-empty; the first such key, or "".
std::string ProxyKeyIn(std::string_view env_text);

}  // namespace lca::stateroot
