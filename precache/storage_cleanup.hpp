#pragma once
// Container-storage cleanup before pre-caching (reference-lca §3.4): when the containers
// filesystem is fuller than a threshold (default 50 %), remove images that nothing needs,
// dangling ones first, then the oldest, in batches, re-checking usage after each batch.
// Never an image pinned in CRI-O or used by any container (podman's or CRI-O's).
#include <cstddef>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "precache/podman.hpp"
#include "precache/space_plan.hpp"

namespace lca::precache {

inline constexpr int kDefaultCleanupThresholdPercent = 50;
inline constexpr const char* kAnnotationCleanupOnPrep = "image-cleanup.lca.openshift.io/on-prep";
inline constexpr const char* kAnnotationCleanupThreshold =
    "image-cleanup.lca.openshift.io/disk-usage-threshold-percent";

// (size - f_bavail) x 100 / size, integer division, as the reference computes it.
int UsagePercent(const FsUsage& fs);

// Images that must stay: ids and any name/digest that refers to them.
struct KeepSet {
  std::set<std::string> refs;  // ids, names, repo digests
  bool Keeps(const LocalImage& img) const;
};

// Candidates in removal order: dangling first, then by Created ascending; kept ones and images
// with containers (podman's count) are left out.
std::vector<LocalImage> CleanupCandidates(const std::vector<LocalImage>& images,
                                          const KeepSet& keep);

// Images CRI-O pins (`crictl images -o json`, .images[].pinned) and images of CRI-O
// containers (`crictl ps -a -o json`), plus podman's containers' images (`podman ps -a --format
// json`). A host without crictl contributes nothing from CRI-O (logged).
KeepSet InUseImages(ProcessRunner& runner, const PodmanConfig& podman,
                    const std::string& crictl = "crictl");

struct CleanupOptions {
  int threshold_percent = kDefaultCleanupThresholdPercent;
  size_t batch = 5;
};

struct CleanupResult {
  int usage_before = 0;
  int usage_after = 0;
  bool exceeded = false;             // usage_before > threshold
  std::vector<std::string> removed;  // image ids
  bool ran_out = false;              // candidates ran out above the threshold (a warning)
};

// Runs the cleanup on the filesystem `usage()` measures. `usage` is a parameter so tests can
// drive the re-check after each batch.
CleanupResult CleanupStorage(ProcessRunner& runner, const PodmanConfig& podman, const KeepSet& keep,
                             const CleanupOptions& opts, const std::function<FsUsage()>& usage);

// The threshold from the IBU annotations: nullopt when cleanup is off (on-prep: Disabled, or an
// unparsable threshold, which the reference also treats as "off" and logs).
std::optional<int> CleanupThresholdFromAnnotations(
    const std::map<std::string, std::string>& annotations);

}  // namespace lca::precache
