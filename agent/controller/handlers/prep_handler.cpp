#include "agent/controller/handlers/prep_handler.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/history.hpp"
#include "agent/controller/handlers/prep_steps.hpp"
#include "agent/controller/host_view.hpp"
#include "agent/pivot/extra_manifests.hpp"
#include "agent/store/object_store.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/state_layout.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/seed_image.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

// The pull secret for the seed: the Secret named in the spec (a file under the config dir in
// the embedded default) or the node's own.
std::pair<std::string, std::string> PullSecret(const api::ImageBasedUpgrade& ibu,
                                               const AgentPaths& paths, const PrepOptions& opts) {
  if (ibu.spec.seed_image_ref.pull_secret_ref) {
    const std::string& name = ibu.spec.seed_image_ref.pull_secret_ref->name;
    const fs::path file = paths.config_dir / "secrets" / name / ".dockerconfigjson";
    auto data = ReadFileIfExists(file);
    if (!data) {
      throw Error(Errc::kNotFound, "pull secret '" + name + "' not found: expected " +
                                       file.string() +
                                       " (a dockerconfigjson); create it or remove "
                                       "spec.seedImageRef.pullSecretRef");
    }
    return {*data, file.string()};
  }
  auto data = ReadFileIfExists(opts.node_pull_secret);
  if (!data) {
    throw Error(Errc::kNotFound, "no spec.seedImageRef.pullSecretRef and no node pull secret at " +
                                     opts.node_pull_secret.string());
  }
  return {*data, opts.node_pull_secret.string()};
}

// spec.extraManifests are checked before anything is fetched (reference-lca §3.2 item 3):
// errors fail Prep, warnings go into the validation-warning annotation for the operator to
// read. Re-running it (a resumed Prep) gives the same annotation; no warnings removes one left
// from an earlier spec.
void ValidateExtraManifestsForPrep(StageContext& ctx, const api::ImageBasedUpgrade& ibu) {
  std::string warnings;
  if (!ibu.spec.extra_manifests.empty()) {
    const auto groups = pivot::LoadExtraManifests(ctx.paths.config_dir, ibu.spec.extra_manifests);
    const auto result = pivot::ValidateExtraManifests(groups);
    if (!result.errors.empty()) {
      throw Error(Errc::kInvalid, "extraManifests: " + result.ErrorText());
    }
    warnings = result.WarningText();
  }
  const std::string key(pivot::kValidationWarningAnnotation);
  const auto& now = ibu.metadata.annotations;
  const auto it = now.find(key);
  if (warnings.empty() ? it == now.end() : (it != now.end() && it->second == warnings)) return;
  ctx.store.Update([&](api::ImageBasedUpgrade& obj) {
    if (warnings.empty()) {
      obj.metadata.annotations.erase(key);
    } else {
      obj.metadata.annotations[key] = warnings;
      spdlog::warn("Prep: extraManifests validation warnings: {}", warnings);
    }
  });
}

// 1. The spec and the running release, on every pass (nothing is journaled yet).
void ValidateSpec(PrepRun& p) {
  const auto& seed = p.ibu.spec.seed_image_ref;
  try {
    if (seed.image.empty()) throw Error(Errc::kInvalid, "spec.seedImageRef.image is required");
    if (seed.version.empty()) throw Error(Errc::kInvalid, "spec.seedImageRef.version is required");
    const auto& booted = p.host.RequireBooted();
    p.node = pivot::NodeView{p.ctx.paths.sysroot,
                             booted,
                             p.host.Cmdline(),
                             p.host.proc_cmdline(),
                             p.ctx.paths.containers_root,
                             p.ctx.paths.config_dir};
    sr::CheckSeedIsNewer(
        seed.version, pivot::NodeRunningVersion(p.opts.node, p.node, p.opts.running_version,
                                                p.host.sysroot().CommitVersion(booted.checksum)));
    pivot::RefuseOadpContent(p.ibu);
    ValidateExtraManifestsForPrep(p.ctx, p.ibu);
  } catch (const std::exception& e) {
    throw PrepFailure("failed to validate IBU spec", e);
  }
}

// 2. The workspace and the pull secret the seed steps use.
void PrepareWorkspace(PrepRun& p) {
  try {
    EnsureDir(p.ctx.paths.workspace(), 0700);
  } catch (const std::exception& e) {
    throw PrepFailure("failed to initialize IBU workspace", e);
  }
  try {
    std::tie(p.secret, p.secret_source) = PullSecret(p.ibu, p.ctx.paths, p.opts);
  } catch (const std::exception& e) {
    throw PrepFailure("failed to validate IBU spec", e);
  }
  p.auth_path = p.ctx.paths.workspace() / state_layout::kSeedPullSecret;
}

Outcome CompletedOutcome(StageContext& ctx, const PrecacheOptions& precache) {
  // The reference's wording wins when there are warnings: the operator must read them before
  // Upgrade applies the manifests.
  if (ctx.Object().metadata.annotations.contains(
          std::string(pivot::kValidationWarningAnnotation))) {
    return Outcome::Completed(PrepHandler::kCompletedWithWarnings);
  }
  return Outcome::Completed(precache.disabled ? PrepHandler::kCompletedWithoutPrecache
                                              : PrepHandler::kCompleted);
}

}  // namespace

Outcome PrepHandler::Run(StageContext& ctx) {
  PrepRun p{ctx, opts_, ctx.Object(), ctx.Host()};
  try {
    ValidateSpec(p);
    const fs::path work =
        opts_.work_dir.empty() ? sr::DefaultWorkDir(ctx.paths.sysroot) : opts_.work_dir;
    p.setup.emplace(p.host.sysroot(), work, p.host.target());
    p.setup->set_selinux_enabled(pivot::SelinuxEnabled(p.opts.node.selinuxfs));
    try {
      // Reference Prep step 2a, before anything is pulled; the bare reference message.
      p.storage_target = pivot::CheckContainerStorage(p.opts.node, p.node);
      PrepareWorkspace(p);
    } catch (const Error&) {
      ctx.Steps().UndoDone(PrepSteps(), p);  // what earlier passes made goes too
      throw;
    }
    // 3. The stateroot from the seed, then the images (prep_steps.cpp).
    ctx.RunSteps(PrepSteps(), p);
    return CompletedOutcome(ctx, opts_.precache);
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    return Outcome::Failed(e.what());
  }
}

std::vector<std::string> PrepHandler::StepNames() { return lca::StepNames(PrepSteps()); }

}  // namespace lca
