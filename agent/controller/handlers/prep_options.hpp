#pragma once
// What the Prep handler needs to know beyond AgentPaths (prep_handler.hpp, prep_steps.hpp).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/controller/handlers/precache_phase.hpp"
#include "agent/pivot/node_checks.hpp"

namespace lca {

struct PrepOptions {
  // The running release when the booted commit has no "version" metadata, or to override it
  // (Kubernetes mode reads ClusterVersion instead).
  std::optional<std::string> running_version;
  // containers-registries.conf for skopeo/podman (mirrors, insecure loopback registries).
  std::optional<std::filesystem::path> registries_conf;
  std::optional<std::filesystem::path> signature_policy;
  // The node's pull secret, used when the spec names no pullSecretRef (LCA does the same).
  std::filesystem::path node_pull_secret = "/var/lib/kubelet/config.json";
  // Unpacked size ≈ layer bytes × this (ostree.tgz and var.tgz of real seeds expand ~2.2-2.6×).
  double seed_expansion = 3.0;
  uint64_t space_margin_bytes = 512ull << 20;
  // Scratch dir on the sysroot's filesystem; empty = <sysroot>/ostree/lca-prep.
  std::filesystem::path work_dir;
  // This node's facts for the seed checks (agent/pivot/node_checks.hpp); its cluster_version
  // is the Kubernetes-mode seam for the running version.
  pivot::NodeCheckOptions node;
  // The Precache phase after the stateroot one.
  PrecacheOptions precache;
};

}  // namespace lca
