#include "agent/controller/handlers/precache_phase.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

#include "agent/api/history.hpp"
#include "agent/metrics/progress.hpp"
#include "common/atomic_file.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"
#include "precache/image_list.hpp"
#include "precache/mirrors.hpp"
#include "precache/progress.hpp"
#include "precache/space_plan.hpp"
#include "precache/storage_cleanup.hpp"
#include "stateroot/seed_format.hpp"
#include "stateroot/seed_image.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace pc = precache;

namespace {

constexpr const char* kJob =
    "job-name: lca-prep-precache, job-namespace: openshift-lifecycle-agent";
constexpr const char* kFailPrefix = "precache job failed to complete: ";

Json Auths(const std::string& text, const std::string& source) {
  const Json j = ParseJson(text, source);
  if (!j.is_object() || !j.contains("auths") || !j["auths"].is_object()) {
    throw Error(Errc::kInvalid, source + ": not a dockerconfigjson (expected {\"auths\": {...}})");
  }
  return j["auths"];
}

}  // namespace

void ApplyPrecacheEnvironment(PrecacheOptions& opts) {
  if (const char* v = std::getenv("PRECACHE_BEST_EFFORT");
      v != nullptr && std::string(v) == "TRUE") {
    opts.best_effort = true;
  }
  if (const char* v = std::getenv("MAX_PULL_THREADS"); v != nullptr) {
    const std::string s = v;
    if (!s.empty() && s.size() < 5 && s.find_first_not_of("0123456789") == std::string::npos &&
        std::stoi(s) >= 1) {
      opts.concurrency = static_cast<size_t>(std::stoi(s));
    }
  }
}

std::optional<std::string> PrecachePullSecret(const api::ImageBasedUpgrade& ibu,
                                              const AgentPaths& paths,
                                              const fs::path& node_pull_secret) {
  Json auths = Json::object();
  bool any = false;
  if (auto node = ReadFileIfExists(node_pull_secret)) {
    auths = Auths(*node, node_pull_secret.string());
    any = true;
  }
  if (ibu.spec.seed_image_ref.pull_secret_ref) {
    const fs::path file = paths.config_dir / "secrets" /
                          ibu.spec.seed_image_ref.pull_secret_ref->name / ".dockerconfigjson";
    if (auto spec = ReadFileIfExists(file)) {
      const Json spec_auths = Auths(*spec, file.string());
      for (const auto& [registry, entry] : spec_auths.items()) {
        auths[registry] = entry;
      }
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return Json{{"auths", auths}}.dump();
}

std::string PrecacheProgressMessage(const pc::PrecacheStatus& s, uint64_t bytes_done,
                                    uint64_t bytes_total) {
  std::string msg =
      std::string("Precache job in progress. ") + kJob + ". " + pc::ProgressMessage(s);
  if (bytes_total > 0) msg += ", " + FormatBytes(bytes_done) + " of " + FormatBytes(bytes_total);
  return msg;
}

namespace {

// 1. The list: the seed's containers.list with the release-registry override.
std::vector<std::string> PrecacheImages(StageContext& ctx, const PrecacheOptions& opts) {
  const fs::path ws = ctx.paths.workspace();
  try {
    const auto list = ReadFileIfExists(ws / state_layout::kContainersList);
    if (!list) {
      throw Error(Errc::kNotFound, (ws / state_layout::kContainersList).string() +
                                       " is missing: the stateroot phase did not finish; abort "
                                       "(stage Idle) and run Prep again");
    }
    pc::ImageListInput in;
    in.containers_list = *list;
    if (auto manifest = ReadFileIfExists(ws / state_layout::kSeedManifest)) {
      const auto info = stateroot::ParseSeedClusterInfo(
          ParseJson(*manifest, "workspace/manifest.json"), "workspace/manifest.json");
      in.registry.seed_release_registry = info.release_registry;
      in.registry.seed_mirror_registry_configured = info.mirror_registry_configured;
    }
    in.registry.cluster_release_registry = opts.cluster_release_registry;
    in.registry.cluster_mirror_sources = opts.cluster_mirror_sources;
    // The cluster's ICSP/IDMS objects, in the embedded default as manifests under
    // <config-dir>/mirrors (the same files `lcactl mirrors render` turns into registries.conf).
    const fs::path mirrors = ctx.paths.config_dir / "mirrors";
    if (fs::is_directory(mirrors)) {
      for (const auto& e : fs::directory_iterator(mirrors)) {
        const std::string ext = e.path().extension().string();
        if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
        for (const auto& src :
             pc::MirrorSources(pc::ParseMirrorManifests(ReadFile(e.path()), e.path().string()))) {
          in.registry.cluster_mirror_sources.push_back(src);
        }
      }
    }
    return pc::BuildPrecacheList(in);
  } catch (const Error& e) {
    throw Error(e.code(), kFailPrefix + std::string(e.what()));
  }
}

// 2. Room first: images nothing needs go when the filesystem is fuller than the threshold
// (reference §3.4, which runs this before the stateroot job; here it runs right before the
// pulls it makes room for).
void MakeRoom(StageContext& ctx, const api::ImageBasedUpgrade& ibu, const PrecacheOptions& opts,
              const std::vector<std::string>& images) {
  const auto threshold = pc::CleanupThresholdFromAnnotations(ibu.metadata.annotations);
  if (!threshold) return;
  try {
    auto keep = pc::InUseImages(ctx.runner, opts.podman);
    // Never the images about to be pre-cached: an earlier Prep (aborted) may have pulled them,
    // and the reference's cleanup would delete them only to pull them again.
    for (const auto& img : images) keep.refs.insert(pc::NormalizeReference(img));
    pc::CleanupOptions co;
    co.threshold_percent = *threshold;
    const fs::path storage = opts.podman.root;
    const auto res =
        pc::CleanupStorage(ctx.runner, opts.podman, keep, co, [&] { return pc::StatFs(storage); });
    if (res.exceeded) {
      spdlog::info("image cleanup: removed {} images, usage {}% -> {}%", res.removed.size(),
                   res.usage_before, res.usage_after);
    }
  } catch (const std::exception& e) {
    // The reference requeues on cleanup errors; a cleanup that cannot run is no reason to
    // stop: the space check below decides.
    spdlog::warn("image cleanup failed, continuing: {}", e.what());
  }
}

struct PullPlan {
  std::chrono::steady_clock::time_point deadline;  // of the whole phase
  std::vector<pc::PullItem> items;
  std::optional<std::chrono::microseconds> round_trip;
};

// 3. Space, from the registry's manifests of the images not yet here, before any pull.
PullPlan PlanPulls(StageContext& ctx, const PrecacheOptions& opts,
                   const std::vector<std::string>& images,
                   const std::optional<stateroot::TransientAuthFile>& auth) {
  const fs::path storage = opts.podman.root;
  try {
    const pc::LocalImages local = pc::ListLocalImages(ctx.runner, opts.podman);
    std::vector<std::string> missing;
    for (const auto& img : images) {
      if (!local.Contains(img)) missing.push_back(img);
    }
    stateroot::RegistryAccess access;
    if (auth) access.authfile = auth->path();
    access.registries_conf = opts.registries_conf;
    access.timeout = std::chrono::minutes(2);
    const pc::Inspection inspected = pc::InspectAll(ctx.runner, missing, access, opts.concurrency);
    for (const auto& e : inspected.errors) {
      spdlog::warn("precache: {} (its size is not counted)", e);
    }
    const auto& layers = inspected.layers;
    const pc::SpacePlan plan =
        pc::PlanSpace(layers, pc::LocalLayerDigests(storage), opts.expansion, 0,
                      opts.gc_high_threshold_percent, pc::StatFs(storage), storage);
    spdlog::info("precache: {} images, {} missing; {} to download, ~{} on disk, {} available",
                 images.size(), missing.size(), FormatBytes(plan.download_bytes),
                 FormatBytes(plan.needed_bytes), FormatBytes(plan.available_bytes));
    pc::RequireSpace(plan);
    return PullPlan{{}, pc::ToPullItems(images, layers), inspected.SlowestRoundTrip()};
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) throw;
    throw Error(e.code(), kFailPrefix + std::string(e.what()));
  }
}

// 4. Pull, with the status file and the condition message following each image.
pc::PullResult Pull(StageContext& ctx, const PrecacheOptions& opts, const PullPlan& plan,
                    pc::ProgressRecorder& recorder,
                    const std::optional<stateroot::TransientAuthFile>& auth) {
  pc::PullOptions po;
  po.window = opts.concurrency;
  po.round_trip = plan.round_trip;
  po.attempts = opts.attempts;
  po.backoff = opts.backoff;
  po.deadline = plan.deadline;
  po.best_effort = opts.best_effort;
  po.tag_check.emplace();  // present tag images must match the registry (stale_tags.hpp)
  if (auth) po.tag_check->authfile = auth->path();
  po.tag_check->registries_conf = opts.registries_conf;
  if (auth) po.authfile = auth->path();
  pc::PullHooks hooks;
  hooks.cancelled = [&] { return ctx.cancel.Cancelled(); };
  std::mutex progress_mu;
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  hooks.progress = [&](const pc::PullResult& r) {
    std::lock_guard lock(progress_mu);
    metrics::ReportPrecacheBytes(r.bytes_done, r.bytes_total);  // every callback, unthrottled
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) return;  // the object is not a log
    last = now;
    ctx.Progress(PrecacheProgressMessage(recorder.Snapshot(), r.bytes_done, r.bytes_total));
  };
  ctx.Progress(PrecacheProgressMessage(recorder.Snapshot(), 0, 0));
  metrics::ReportPrecacheBytes(0, 0);
  pc::PullResult result = pc::PullImages(ctx.runner, opts.podman, plan.items, po, &recorder, hooks);
  metrics::ReportPrecacheBytes(result.bytes_done, result.bytes_total);
  return result;
}

// 5. The outcome: cancelled, timed out, failed images (fatal unless best effort), and the
// image GC threshold afterwards.
void CheckPulls(const PrecacheOptions& opts, const pc::PullResult& result, size_t total) {
  if (result.cancelled) throw Error(Errc::kCancelled, "cancelled while pre-caching");
  if (result.timed_out) {
    throw Error(Errc::kTimeout, std::string(kFailPrefix) + "timed out after " +
                                    std::to_string(opts.timeout.count()) + "s with " +
                                    std::to_string(result.failed.size()) + " of " +
                                    std::to_string(total) +
                                    " images not pre-cached: " + result.DescribeFailures());
  }
  if (!result.failed.empty()) {
    const std::string what = "failed to pre-cache " + std::to_string(result.failed.size()) +
                             " of " + std::to_string(total) +
                             " images: " + result.DescribeFailures();
    if (!opts.best_effort) throw Error(Errc::kProcess, std::string(kFailPrefix) + what);
    spdlog::warn("precache (best effort): {}", what);
  }
  // After the pulls, as TALM checks: above the image GC threshold the kubelet would start
  // deleting images, undoing the pre-cache.
  const fs::path storage = opts.podman.root;
  const pc::FsUsage after = pc::StatFs(storage);
  if (pc::AvailableBelowThreshold(after, opts.gc_high_threshold_percent) == 0) {
    const std::string what =
        "the containers filesystem " + storage.string() + " is at or above the " +
        std::to_string(opts.gc_high_threshold_percent) +
        "% image GC threshold after pre-caching (size " + FormatBytes(after.size_bytes) +
        ", used " + FormatBytes(after.used_bytes) +
        "): image garbage collection would remove pre-cached images";
    if (!opts.best_effort) throw Error(Errc::kProcess, std::string(kFailPrefix) + what);
    spdlog::warn("precache (best effort): {}", what);
  }
}

}  // namespace

PrecachePhaseResult RunPrecachePhase(StageContext& ctx, const api::ImageBasedUpgrade& ibu,
                                     const PrecacheOptions& opts) {
  PrecachePhaseResult out;
  if (opts.disabled) {
    spdlog::info("precache: disabled in the lifecycle-agent configuration");
    return out;
  }
  out.ran = true;
  const auto deadline = opts.timeout.count() > 0 ? std::chrono::steady_clock::now() + opts.timeout
                                                 : std::chrono::steady_clock::time_point::max();
  ctx.StartPhase(api::phase::kPrecache);
  ctx.Progress(std::string("Successfully launched a new job precache. ") + kJob);
  const auto images = PrecacheImages(ctx, opts);
  MakeRoom(ctx, ibu, opts, images);
  std::optional<stateroot::TransientAuthFile> auth;
  if (auto secret = PrecachePullSecret(ibu, ctx.paths, opts.node_pull_secret)) {
    auth.emplace(ctx.paths.workspace() / state_layout::kPrecachePullSecret, *secret,
                 "the pre-cache pull secret");
  }
  PullPlan plan = PlanPulls(ctx, opts, images, auth);
  plan.deadline = deadline;
  pc::ProgressRecorder recorder(ctx.paths.workspace() / pc::kStatusFileName, images.size());
  out.pull = Pull(ctx, opts, plan, recorder, auth);
  auth.reset();  // the secret goes as soon as the pulls are done
  ctx.Progress(
      PrecacheProgressMessage(recorder.Snapshot(), out.pull.bytes_done, out.pull.bytes_total));
  CheckPulls(opts, out.pull, images.size());
  ctx.StopPhase(api::phase::kPrecache);
  spdlog::info("precache: {} pulled, {} already present, {} failed, {} processes",
               out.pull.pulled.size(), out.pull.skipped.size(), out.pull.failed.size(),
               out.pull.processes);
  return out;
}

}  // namespace lca
