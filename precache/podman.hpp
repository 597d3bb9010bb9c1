#pragma once
// podman as a process (argv only, never a shell string): the one place that knows its global
// flags, how to list what local storage holds, and how a pull is spelled.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/process.hpp"

namespace lca::precache {

// Where podman keeps images and how it is run. Every path is explicit so the daemon (and the
// tests) never fall back to podman's root defaults by accident: as root, podman writes state to
// /run/libpod and /run/containers unless told otherwise.
struct PodmanConfig {
  std::string binary = "podman";
  std::filesystem::path root = "/var/lib/containers/storage";  // --root
  std::filesystem::path runroot;                               // --runroot; empty: podman's
  std::filesystem::path tmpdir;                                // --tmpdir; empty: podman's
  std::string storage_driver;  // --storage-driver; empty: storage.conf's (overlay on RHCOS)
  // containers-registries.conf (mirrors, insecure registries); empty: the system's. podman reads
  // CONTAINERS_REGISTRIES_CONF (unlike skopeo 1.9).
  std::filesystem::path registries_conf;
  // containers-policy.json for pulls (--signature-policy); empty: the system's.
  std::filesystem::path signature_policy;
  // Extra environment for podman (HOME, TMPDIR, ... in tests).
  std::map<std::string, std::string> env;

  // CPU and I/O priority for pulls, as LCA's precache job: nice -n 0, ionice -c 2 -n 4
  // (best-effort class, middle priority). Out-of-range values fall back to these defaults.
  int nice = 0;
  int ionice_class = 2;
  int ionice_priority = 4;
  bool use_nice = true;  // false: no nice/ionice wrapper (hosts without ionice)
};

// The argv of `podman <global flags> <args...>`.
std::vector<std::string> PodmanArgv(const PodmanConfig& cfg, const std::vector<std::string>& args);
// A ready ProcessSpec (env applied), with `timeout`; `niced` wraps it in nice/ionice.
ProcessSpec PodmanSpec(const PodmanConfig& cfg, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout, bool niced = false);

// One image in local storage, from `podman images --format json`.
struct LocalImage {
  std::string id;
  std::vector<std::string> names;         // Names and RepoTags: "reg/repo:tag"
  std::vector<std::string> repo_digests;  // "reg/repo@sha256:..."
  std::vector<std::string> digests;       // Digest (manifest digests)
  int64_t created = 0;                    // unix seconds
  int64_t size = 0;
  bool dangling = false;  // no names at all
  uint64_t containers = 0;
};

// What local storage holds, for "is this reference already here?" without a registry round
// trip.
class LocalImages {
 public:
  LocalImages() = default;
  explicit LocalImages(std::vector<LocalImage> images);

  // A reference pinned by digest ("repo@sha256:...") is present when an image has that repo
  // digest (or, for "repo:tag@sha256:", the same repo and digest). A tag reference is present
  // when an image carries that name ("repo" without a tag means ":latest"). Short names
  // (no registry) are never "present": podman would resolve them through search registries.
  bool Contains(std::string_view ref) const;
  // Every manifest digest ("sha256:…") of the images named `tag_ref` (Digest and the digests
  // of their RepoDigests in the same repository); empty when none has that name.
  std::vector<std::string> DigestsOf(std::string_view tag_ref) const;
  const std::vector<LocalImage>& images() const { return images_; }

 private:
  std::vector<LocalImage> images_;
  std::set<std::string> names_;
  std::set<std::string> repo_digests_;
};

// Parses `podman images --format json` output.
std::vector<LocalImage> ParseLocalImages(std::string_view json_text);

// Runs `podman images --format json`. Throws kProcess with podman's message on failure.
LocalImages ListLocalImages(ProcessRunner& runner, const PodmanConfig& cfg,
                            std::chrono::milliseconds timeout = std::chrono::seconds(120));

// "reg/repo:tag" for "reg/repo" (no tag, no digest); anything else unchanged.
std::string NormalizeReference(std::string_view ref);

// podman's (or skopeo's) error text, without log framing and trailing whitespace.
std::string PodmanFailure(const ProcessResult& r);

}  // namespace lca::precache
