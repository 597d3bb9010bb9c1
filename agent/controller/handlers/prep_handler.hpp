#pragma once
// Prep (reference §3.1, natively): validate the spec and the seed's labels, then build the new
// stateroot from the seed in journaled steps, then pre-cache the new release's images
// (precache_phase.hpp).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/controller/handlers/cleanup.hpp"
#include "agent/controller/handlers/precache_phase.hpp"
#include "agent/controller/stage_handler.hpp"

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
  // The Precache phase after the stateroot one.
  PrecacheOptions precache;
};

class PrepHandler final : public StageHandler {
 public:
  explicit PrepHandler(PrepOptions opts) : opts_(std::move(opts)) {}
  Work work() const override { return Work::kPrep; }
  Outcome Run(StageContext& ctx) override;
  // The persisted names of kPrepSteps (prep_steps.cpp), in order.
  static std::vector<std::string> StepNames();

  // The reference's message, after the stateroot and the pre-cache phases.
  static constexpr const char* kCompleted = "Prep stage completed successfully";
  // When pre-caching is disabled in the lifecycle-agent config, the message says so.
  static constexpr const char* kCompletedWithoutPrecache =
      "Prep stage completed successfully (stateroot ready; container images were not "
      "pre-cached: pre-caching is disabled in the lifecycle-agent configuration)";
  // When extraManifests validation left the warning annotation (reference-lca §3.1 item 5).
  static constexpr const char* kCompletedWithWarnings =
      "Prep stage completed with extramanifests validation warning. Please check the "
      "annotation 'extra-manifest.lca.openshift.io/validation-warning' for details.";

 private:
  PrepOptions opts_;
};

}  // namespace lca
