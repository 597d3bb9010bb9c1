#include "stateroot/seed_compat.hpp"

#include <algorithm>
#include <cctype>

#include "common/error.hpp"

namespace lca::stateroot {
namespace {

constexpr const char* kPrefix = "checking seed image compatibility: ";

Error Mismatch(const std::string& go_message, const std::string& detail) {
  return Error(Errc::kInvalid, kPrefix + go_message + " (" + detail + ")");
}

std::string Registry(const std::string& s) { return s.substr(0, s.find('/')); }

void CheckProxy(bool seed, const NodeFacts& node) {
  if (seed == node.has_proxy) return;
  const std::string detail =
      "this node: " + node.proxy_source +
      "; a seed must come from a cluster with the same proxy setting: use a seed made on a "
      "cluster that " +
      (node.has_proxy ? "has" : "has no") + " proxy";
  if (seed) {
    throw Mismatch(
        "seed image has a proxy but the cluster being upgraded does not, this "
        "combination is not supported",
        detail);
  }
  throw Mismatch(
      "seed image does not have a proxy but the cluster being upgraded does, this "
      "combination is not supported",
      detail);
}

void CheckFips(bool seed, const NodeFacts& node) {
  if (seed == node.has_fips) return;
  const std::string detail = "this node: " + node.fips_source +
                             "; use a seed made on a cluster with FIPS " +
                             (node.has_fips ? "enabled" : "disabled");
  if (seed) {
    throw Mismatch(
        "seed image has FIPS enabled but the cluster being upgraded does not, this "
        "combination is not supported",
        detail);
  }
  throw Mismatch(
      "seed image does not have FIPS enabled but the cluster being upgraded does, "
      "this combination is not supported",
      detail);
}

// The seed's images are rewritten to this cluster's release registry when the reference's
// override rule says so (§4.1); a node that does not know its release registry cannot do
// that, and every pre-cache pull would go to the seed cluster's registry.
void CheckReleaseRegistry(const SeedClusterInfo& seed, const NodeFacts& node) {
  if (seed.release_registry.empty() || !node.release_registry.empty()) return;
  bool override_needed = false;
  if (node.mirror_sources.empty()) {
    override_needed = seed.mirror_registry_configured;
  } else {
    const std::string reg = Registry(seed.release_registry);
    override_needed = std::none_of(node.mirror_sources.begin(), node.mirror_sources.end(),
                                   [&](const std::string& s) { return Registry(s) == reg; });
  }
  if (!override_needed) return;
  throw Error(
      Errc::kInvalid,
      std::string(kPrefix) + "the seed's images come from release registry " +
          seed.release_registry +
          (seed.mirror_registry_configured ? " (mirror_registry_configured: true)" : "") +
          (node.mirror_sources.empty()
               ? ""
               : ", which is not a mirror source of this node (<config-dir>/mirrors)") +
          ", so they must be rewritten to this cluster's release registry, which this node does "
          "not know: set releaseRegistry in /etc/lca/lifecycle-agent.yaml (the registry of the "
          "cluster-version-operator image)");
}

}  // namespace

bool CmdlineHasFips(std::string_view cmdline) {
  size_t start = 0;
  while (start < cmdline.size()) {
    while (start < cmdline.size() && std::isspace(static_cast<unsigned char>(cmdline[start])))
      ++start;
    size_t end = start;
    while (end < cmdline.size() && !std::isspace(static_cast<unsigned char>(cmdline[end]))) ++end;
    if (cmdline.substr(start, end - start) == "fips=1") return true;
    start = end;
  }
  return false;
}

std::string ProxyKeyIn(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(start, nl - start));
    start = nl + 1;
    if (line.rfind("export ", 0) == 0) line.erase(0, 7);
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    std::string value = line.substr(eq + 1);
    value.erase(std::remove_if(value.begin(), value.end(),
                               [](char c) {
                                 return c == '"' || c == '\'' ||
                                        std::isspace(static_cast<unsigned char>(c));
                               }),
                value.end());
    if ((key == "HTTP_PROXY" || key == "HTTPS_PROXY" || key == "NO_PROXY") && !value.empty()) {
      return key;
    }
  }
  return {};
}

void CheckSeedCompatibility(const std::optional<SeedClusterInfo>& seed, const NodeFacts& node) {
  CheckProxy(seed && seed->has_proxy, node);
  CheckFips(seed && seed->has_fips, node);
  if (!seed) return;
  if (!seed->container_storage_mountpoint_target.empty() && node.storage_target &&
      *node.storage_target != seed->container_storage_mountpoint_target) {
    throw Error(Errc::kInvalid,
                std::string(kPrefix) + "container storage mountpoint target mismatch: seed=" +
                    seed->container_storage_mountpoint_target +
                    ", cluster=" + *node.storage_target +
                    " (this node's target is What= of its mount unit, else the mount's source; "
                    "use a seed made on a host whose container storage partition is mounted "
                    "the same way)");
  }
  CheckReleaseRegistry(*seed, node);
}

}  // namespace lca::stateroot
