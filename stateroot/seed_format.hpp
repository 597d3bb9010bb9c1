#pragma once
// The seed image contract (format 4, as `lca-cli create` makes it) and the rules Prep applies to
// it. Pure functions of text and JSON: everything here is unit-tested without a registry.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_yaml.hpp"

namespace lca::stateroot {

inline constexpr std::string_view kSeedFormatVersionLabel =
    "com.openshift.lifecycle-agent.seed_format_version";
inline constexpr std::string_view kSeedClusterInfoLabel =
    "com.openshift.lifecycle-agent.seed_cluster_info";
inline constexpr std::string_view kSeedFormatVersion = "4";

// Root files of a seed image.
namespace seedfile {
inline constexpr std::string_view kOstree = "ostree.tgz";
inline constexpr std::string_view kVar = "var.tgz";
inline constexpr std::string_view kEtc = "etc.tgz";
inline constexpr std::string_view kEtcDeletions = "etc.deletions";
inline constexpr std::string_view kRpmOstree = "rpm-ostree.json";
inline constexpr std::string_view kMcoConfig = "mco-currentconfig.json";
inline constexpr std::string_view kContainersList = "containers.list";
inline constexpr std::string_view kManifest = "manifest.json";
// ostree-<checksum>.<serial>.origin
bool IsOrigin(std::string_view name);
}  // namespace seedfile

// The seed_cluster_info label and manifest.json (lca-cli/seedclusterinfo). Only the fields the
// node agent uses are typed; the rest is kept verbatim in `raw`.
struct SeedClusterInfo {
  std::string seed_cluster_ocp_version;
  std::string release_registry;
  bool has_proxy = false;
  bool has_fips = false;
  bool mirror_registry_configured = false;
  std::string container_storage_mountpoint_target;
  std::string recert_image_pull_spec;
  Json raw = Json::object();
};
SeedClusterInfo ParseSeedClusterInfo(const Json& j, std::string_view what);

// Checks the labels read from the registry (before anything is fetched). Returns the cluster
// info when the label is present (older seeds may lack it). Throws lca::Error kInvalid with the
// reference messages.
std::optional<SeedClusterInfo> ValidateSeedLabels(const Json& labels);

// Semantic versions (semver 2.0; build metadata ignored, a prerelease sorts before its release).
// Throws kInvalid for something that is not a version.
int CompareVersions(std::string_view a, std::string_view b);

// Prep's version rule: the seed's version must be greater than the running release.
// Throws kInvalid "seed OCP version (<seed>) must be higher than current OCP version (<cur>)".
void CheckSeedVersionIsNewer(std::string_view seed, std::string_view running);

// manifest.json's version must equal spec.seedImageRef.version. Throws kInvalid
// "version specified in seed image (X) differs from version in spec (Y)".
void CheckSeedVersionMatchesSpec(std::string_view seed, std::string_view spec);

// The seed's booted deployment from rpm-ostree.json (`rpm-ostree status -v --json`): its id
// "<os>-<checksum>.<serial>" gives deployment "<checksum>.<serial>" (text after the LAST '-',
// so stateroot names with dashes work) and the commit checksum.
struct SeedDeployment {
  std::string id;          // rhcos-<checksum>.1
  std::string deployment;  // <checksum>.1
  std::string checksum;    // <checksum>
};
SeedDeployment SeedBootedDeployment(const Json& rpm_ostree_status);
SeedDeployment ParseDeploymentId(std::string_view id);

// Kernel arguments for the new deployment: the MachineConfig's spec.kernelArguments, fips=1 and
// boot=LABEL=boot when spec.fips, then ibu=<version>.
std::vector<std::string> SeedKernelArgs(const Json& machine_config, std::string_view version);

// etc.deletions: one "/etc/..." path per line. Returns the paths relative to the deployment
// root ("etc/..."); refuses anything outside /etc or with "..".
std::vector<std::string> ParseEtcDeletions(std::string_view text);

// /var/lib/lca/autorollback_config.json (§5.7) from the spec timeout and the annotations as
// they are at Prep.
Json AutoRollbackConfig(int64_t init_monitor_timeout_seconds, bool init_monitor_disabled,
                        bool post_reboot_config_disabled);

}  // namespace lca::stateroot
