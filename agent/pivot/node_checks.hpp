#pragma once
// Prep's checks of this node before anything is fetched (issue 18): what a real single-node
// OpenShift host must have that a bare test bed hides. Each check maps to an item of the
// "Before you start on a real host" checklist in docs/operator-guide.md.
//  * shared container storage (precache/storage_mount.hpp);
//  * the seed's compatibility facts: proxy, FIPS, container-storage target, release registry
//    (stateroot/seed_compat.hpp), with this node's facts read here;
//  * the running version (stateroot/running_version.hpp), with the Kubernetes-mode seam;
//  * spec.oadpContent, refused until the cluster-side work implements it;
//  * whether SELinux is enabled (a label that cannot be written then fails Prep).
#include <filesystem>
#include <optional>
#include <string>

#include "agent/api/ibu.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/running_version.hpp"
#include "stateroot/seed_compat.hpp"

namespace lca::pivot {

struct NodeCheckOptions {
  // The hasProxy setting; nullopt = read the booted deployment's etc/mco/proxy.env, where the
  // Machine Config Operator writes the cluster-wide proxy for the node's services.
  std::optional<bool> has_proxy;
  // The releaseRegistry setting (the registry of the cluster-version-operator image).
  std::string release_registry;
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
  // Shared container storage is required when Prep pre-caches (the images it pulls must
  // survive the pivot); with pre-caching disabled a host without it is only warned about.
  bool require_shared_storage = true;
  // selinuxfs; SELinux is enabled when <selinuxfs>/enforce exists (as libselinux decides).
  std::filesystem::path selinuxfs = "/sys/fs/selinux";
  // Kubernetes mode: ClusterVersion's desired version. Empty in node-only mode.
  stateroot::ClusterVersionProvider cluster_version;
};

// What Prep knows about the host when the checks run.
struct NodeView {
  std::filesystem::path sysroot;
  stateroot::BootedDeployment booted;
  std::string cmdline;                 // the kernel command line's text
  std::filesystem::path cmdline_file;  // for messages
  std::filesystem::path storage_root;  // containers-storage root
  std::filesystem::path config_dir;    // <config-dir>/mirrors holds ICSP/IDMS manifests
};

// Shared container storage (reference Prep step 2a): returns this node's container storage
// mountpoint target; throws kInvalid "container storage mountpoint target not found: ..."
// (only a warning and nullopt when !opts.require_shared_storage).
std::optional<std::string> CheckContainerStorage(const NodeCheckOptions& opts,
                                                 const NodeView& host);

// This node's facts for the seed compatibility check.
stateroot::NodeFacts GatherNodeFacts(const NodeCheckOptions& opts, const NodeView& host,
                                     const std::optional<std::string>& storage_target);

// The seed label's compatibility facts against this node's (reference §3.3). Throws kInvalid
// with the message for Prep's condition.
void CheckNodeForSeed(const NodeCheckOptions& opts, const NodeView& host,
                      const std::optional<std::string>& storage_target,
                      const std::optional<stateroot::SeedClusterInfo>& seed);

// The running release, from the sources in stateroot/running_version.hpp.
stateroot::RunningVersion NodeRunningVersion(const NodeCheckOptions& opts, const NodeView& host,
                                             const std::optional<std::string>& setting,
                                             const std::string& commit_version);

// Throws kInvalid when spec.oadpContent is not empty: nothing here backs up or restores
// application data with OADP yet, and a Prep that completed without them would lose what the
// user asked to keep.
void RefuseOadpContent(const api::ImageBasedUpgrade& ibu);

bool SelinuxEnabled(const std::filesystem::path& selinuxfs);

}  // namespace lca::pivot
