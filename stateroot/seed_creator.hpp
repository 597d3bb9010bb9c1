#pragma once
// `lcactl seed create`: a format-4 seed image from a deployment of an ostree sysroot, with the
// root files and labels `lca-cli create` produces (reference §3.7), so Prep can be tested and
// demonstrated end to end without a cluster. Cluster-side steps of lca-cli (recert, kubelet and
// CRI-O shutdown, certificate backup) are not ours: the sysroot given is taken as ready.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace lca::stateroot {

struct SeedCreateOptions {
  std::filesystem::path sysroot;
  int deployment_index = 0;
  std::string version;  // seed_cluster_ocp_version
  // "oci:DIR[:TAG]" writes an OCI layout; anything else is pushed with skopeo ("docker://" is
  // implied).
  std::string image;
  std::vector<std::string> containers;   // containers.list lines
  std::vector<std::string> kernel_args;  // for mco-currentconfig.json when the tree has none
  std::string release_registry;
  std::optional<std::filesystem::path> authfile;         // for the push
  std::optional<std::filesystem::path> registries_conf;  // for the push
  std::optional<std::filesystem::path> policy;           // for the push
  std::filesystem::path work_dir = "/var/tmp";           // scratch (a temp dir inside)
  int gzip_level = 6;
};

struct SeedCreateResult {
  std::string image;  // where it went
  std::string manifest_digest;
  uint64_t layer_bytes = 0;
};

SeedCreateResult CreateSeed(ProcessRunner& runner, const SeedCreateOptions& opts);

// The config diff of a deployment: files of etc/ that differ from usr/etc (added or changed:
// type, mode, owner, content or link target) and the /etc paths usr/etc has but etc/ does not.
// Paths are relative to the deployment ("etc/..."); the reference's exclusions apply.
struct EtcDiff {
  std::vector<std::string> changed;  // include in etc.tgz
  std::vector<std::string> deleted;  // "/etc/..." lines of etc.deletions (topmost only)
};
EtcDiff DiffEtc(const std::filesystem::path& deployment_dir);

// var.tgz's exclusions (reference §3.7), for a path relative to /var ("tmp/x", "lib/lca").
bool ExcludedFromVar(const std::string& relative);

}  // namespace lca::stateroot
