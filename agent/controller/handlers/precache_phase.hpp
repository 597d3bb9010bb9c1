#pragma once
// Prep's second phase, `Precache` (reference-lca §3.1 step 4, §4): pull every image the new
// release needs into local containers-storage while the running system keeps serving.
//
// Natively, without a Job: the image list from the seed's containers.list (left in the workspace
// by the stateroot phase) with the release-registry override; space planned from the registry's
// manifests before the first pull; the puller (precache/puller.hpp); the progress file
// workspace/precache_status.json; the in-progress message with counts and bytes. It is Prep's
// journaled step "prep.precache" (prep_steps.cpp): a daemon restarted in the middle runs it
// again, and images already pulled are skipped.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"
#include "agent/controller/stage_handler.hpp"
#include "precache/podman.hpp"
#include "precache/puller.hpp"

namespace lca {

struct PrecacheOptions {
  // No pre-cache at all (LCA's IBI knob PRECACHE_DISABLED; hosts whose images come otherwise).
  bool disabled = false;
  // PRECACHE_BEST_EFFORT: images that fail are reported, Prep still completes.
  bool best_effort = false;
  precache::PodmanConfig podman;
  size_t concurrency = 10;  // MAX_PULL_THREADS
  int attempts = 5;
  std::chrono::milliseconds backoff{1000};
  // The whole phase; 0 = none (the reference has none, a stuck registry then hangs Prep forever).
  std::chrono::seconds timeout{std::chrono::hours(4)};
  // On-disk bytes per compressed registry byte (docs/benchmarks.md: what was measured).
  double expansion = 2.5;
  int gc_high_threshold_percent = 85;  // kubelet imageGCHighThresholdPercent
  // For skopeo (manifest sizes); podman uses podman.registries_conf.
  std::optional<std::filesystem::path> registries_conf;
  std::filesystem::path node_pull_secret = "/var/lib/kubelet/config.json";
  // The release-registry override (§4.1): the running cluster's release registry and its
  // ICSP/IDMS mirror sources. Empty registry: no override.
  std::string cluster_release_registry;
  std::vector<std::string> cluster_mirror_sources;
};

// Overrides from the environment LCA's operator reads: PRECACHE_BEST_EFFORT=TRUE (exactly) and
// MAX_PULL_THREADS (an integer >= 1; anything else keeps the configured value).
void ApplyPrecacheEnvironment(PrecacheOptions& opts);

struct PrecachePhaseResult {
  bool ran = false;  // false when disabled
  precache::PullResult pull;
};

// Runs the phase (the body of Prep's step "prep.precache"): StartPhase/StopPhase `Precache`,
// progress messages, the status file. Throws lca::Error: kCancelled when cancelled, otherwise a
// message starting "precache job failed to complete: " (or "no images specified for precaching",
// "not enough space for precaching: ...") for Prep's failed condition.
PrecachePhaseResult RunPrecachePhase(StageContext& ctx, const api::ImageBasedUpgrade& ibu,
                                     const PrecacheOptions& opts);

// The pull secret for pre-caching: the node's (as LCA uses) merged with the one the spec names
// for the seed, whose entries win. nullopt when neither exists (anonymous pulls). Throws
// kInvalid naming the file when one exists but is not a dockerconfigjson.
std::optional<std::string> PrecachePullSecret(const api::ImageBasedUpgrade& ibu,
                                              const AgentPaths& paths,
                                              const std::filesystem::path& node_pull_secret);

// "Precache job in progress. job-name: lca-prep-precache, job-namespace:
//  openshift-lifecycle-agent. total: N (pulled: P, failed: F), 12.0 MiB of 40.0 MiB"
std::string PrecacheProgressMessage(const precache::PrecacheStatus& s, uint64_t bytes_done,
                                    uint64_t bytes_total);

}  // namespace lca
