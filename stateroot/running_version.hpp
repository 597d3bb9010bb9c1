#pragma once
// Which OpenShift release the node runs, for Prep's "seed must be newer" rule (reference-lca
// §3.2 item 1). On RHCOS the booted commit's `version` is a build id (416.94.202405291527-0),
// not the OpenShift version, so the sources are, first that answers:
//   1. the cluster's ClusterVersion `status.desired.version` (Kubernetes mode: a provider the
//      caller passes; none in node-only mode);
//   2. the `runningVersion` setting (lifecycle-agent.yaml / --running-version);
//   3. OPENSHIFT_VERSION in the booted deployment's os-release (major.minor only, as RHCOS
//      writes it), read inside the deployment, never the machine's own /etc;
//   4. the booted commit's `version` metadata when it is a release version (plain ostree
//      hosts), never an RHCOS build id.
// A version that cannot be compared with the seed's is an error naming the setting to fix.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lca::stateroot {

struct RunningVersion {
  std::string version;            // "4.16.3", or "4.16" when only major.minor is known
  bool major_minor_only = false;  // from os-release OPENSHIFT_VERSION
  std::string source;             // for messages: "ClusterVersion", "runningVersion", ...
};

// The seam for Kubernetes mode: returns ClusterVersion/version .status.desired.version, or
// nullopt when it has none. Throws lca::Error when the API cannot be read.
using ClusterVersionProvider = std::function<std::optional<std::string>()>;

struct RunningVersionInputs {
  ClusterVersionProvider cluster_version;   // empty: node-only mode
  std::optional<std::string> setting;       // runningVersion
  std::filesystem::path booted_deployment;  // deployment root inside the sysroot
  std::string commit_version;               // the booted commit's "version" metadata
};

// Throws lca::Error kInvalid naming `runningVersion` when no source gives a usable version.
RunningVersion ResolveRunningVersion(const RunningVersionInputs& in);

// The os-release of a deployment root: etc/os-release when it is a regular file there, else
// usr/lib/os-release (os-release(5)); a symlink is never followed out of the deployment.
// nullopt when neither exists.
std::optional<std::string> ReadDeploymentOsRelease(const std::filesystem::path& deployment);

// The value of KEY in os-release text (quotes removed); nullopt when absent or empty.
std::optional<std::string> OsReleaseValue(std::string_view text, std::string_view key);

// Whether a commit `version` looks like an RHCOS build id ("416.94.202405291527-0").
bool IsRhcosBuildId(std::string_view version);

// The rule: the seed must be newer than the running release. With only major.minor known, a
// seed of a newer minor passes, an older one fails with the reference's message, and the same
// minor cannot be decided: an error asking for runningVersion.
void CheckSeedIsNewer(std::string_view seed, const RunningVersion& running);

}  // namespace lca::stateroot
