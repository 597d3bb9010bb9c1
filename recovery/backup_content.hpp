#pragma once
// What a backup holds and how big it is: TALM's size estimate and space rule (reference §2.3),
// the /etc exclude list from tmpfiles.d rules, the MachineConfig-managed files outside the
// copied trees, and the newest static-pod resource directories. Pure functions of the host
// tree, so unit tests run them on a fake one.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "recovery/host.hpp"

namespace lca::recovery {

inline constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
inline constexpr std::uint64_t kDefaultSpaceMargin = 10 * kGiB;  // TALM's backupSizeSafetyNet

// Sum of the sizes of the non-directory entries under `path` (lstat sizes, so a symlink counts
// its own length). A missing path is kNotFound naming it; unreadable subdirectories are
// skipped with a warning, as TALM does.
std::uint64_t DirSize(const std::filesystem::path& path);

struct SizeEstimate {
  std::uint64_t static_pods = 0;  // static-pod-resources minus its bin/
  std::uint64_t etcd = 0;         // member/snap/db plus the static pods again (the tarball)
  std::uint64_t usr_local = 0, kubelet = 0, etc = 0;
  std::uint64_t extras = 0;  // MachineConfig files outside the trees (TALM does not count them)
  std::uint64_t Total() const { return static_pods + etcd + usr_local + kubelet + etc + extras; }
};
SizeEstimate EstimateBackupSize(const HostConfig& host, const std::vector<std::string>& extras);

// TALM's rule, in bytes: free > estimated + margin (strictly).
bool EnoughSpace(std::uint64_t estimated, std::uint64_t free, std::uint64_t margin);
// statfs f_bavail * f_bsize: what a non-root writer can use, as TALM measures it.
std::uint64_t FreeBytes(const std::filesystem::path& path);
// 1024-based, with the labels TALM meant (B KiB MiB GiB TiB PiB EiB): "1.5 GiB".
std::string HumanSize(std::uint64_t bytes);

// etc.exclude.list: the 2nd field of every rule in <root>/etc/tmpfiles.d/* whose path is under
// /etc/ (without that prefix), then ".updated" and "kubernetes/manifests"; duplicates dropped.
std::string EtcExcludeList(const HostConfig& host);

// Paths (absolute, as on the host) of the files MachineConfig manages outside /etc, /usr/local
// and /var/lib/kubelet: .spec.config.storage.files[].path of
// /etc/machine-config-daemon/currentconfig. No currentconfig (not an OpenShift node) means
// none; an unreadable or malformed one is kInvalid naming the file and the field.
std::vector<std::string> ManagedExtraFiles(const HostConfig& host);

// The path of `host_path` under the root with its parent directories' symlinks resolved inside
// the root (an absolute link target is read relative to the root, as in a chroot), so /opt/x on
// a host where /opt -> var/opt is stored as var/opt/x and extracting it never has to go through
// a symlink. The last component is not followed. Returned relative to the root.
std::string ResolveInRoot(const std::filesystem::path& root, const std::string& host_path);

// The newest (highest revision N) <root>/etc/kubernetes/static-pod-resources/<name>-<N> of each
// of kube-apiserver-pod, kube-controller-manager-pod, kube-scheduler-pod and etcd-pod, as names
// relative to static-pod-resources. A missing one is kNotFound naming what was looked for.
std::vector<std::string> NewestStaticPodDirs(const HostConfig& host);

}  // namespace lca::recovery
