#pragma once
// Shared container storage (reference-lca §3.4, Prep step 2a): images pre-cached during Prep
// must survive the pivot, so containers-storage must be its own filesystem, mounted for both
// stateroots (on OpenShift, the var-lib-containers partition and its mount unit), not a
// directory of the booted stateroot's /var that the new stateroot does not see.
//
// The Go operator takes `What=` of var-lib-containers.mount as the "container storage
// mountpoint target" and fails Prep with "container storage mountpoint target not found"
// without one; the seed records its own target (seed_cluster_info) for the compatibility check.
#include <filesystem>
#include <string>
#include <string_view>

namespace lca::precache {

struct StorageMountInputs {
  std::filesystem::path storage_root;       // the configured containers-storage root
  std::filesystem::path stateroot_var;      // <sysroot>/ostree/deploy/<booted>/var
  std::filesystem::path booted_deployment;  // where the host's mount units are read
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
};

struct StorageMount {
  std::filesystem::path mount_point;  // the mount holding the storage root
  std::string source;                 // its source in mountinfo (/dev/sda5, tmpfs, ...)
  // What= of the mount unit for mount_point in the booted deployment (etc/ then usr/lib/), or
  // `source` when there is no unit: the value compared with the seed's target.
  std::string target;
};

// Throws lca::Error kInvalid "container storage mountpoint target not found: <why and what to
// do>" when the storage root (or its nearest existing parent) is on the stateroot /var's
// filesystem or its mount cannot be found.
StorageMount CheckSharedContainerStorage(const StorageMountInputs& in);

// systemd's unit name for a mount point ("/var/lib/containers" -> "var-lib-containers.mount"),
// as `systemd-escape --path --suffix=mount` gives it.
std::string MountUnitName(const std::filesystem::path& where);

// The value of What= in a mount unit's text; empty when absent.
std::string MountUnitWhat(std::string_view unit_text);

}  // namespace lca::precache
