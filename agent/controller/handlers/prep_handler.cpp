#include "agent/controller/handlers/prep_handler.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/history.hpp"
#include "agent/controller/handlers/journaled_step.hpp"
#include "agent/metrics/progress.hpp"
#include "agent/pivot/extra_manifests.hpp"
#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/seed_format.hpp"
#include "stateroot/seed_image.hpp"
#include "stateroot/stateroot_setup.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

constexpr const char* kAnnInitMonitor = "auto-rollback-on-failure.lca.openshift.io/init-monitor";
constexpr const char* kAnnPostReboot =
    "auto-rollback-on-failure.lca.openshift.io/post-reboot-config";

// Prep's failures carry the reference's prefixes so an operator who knows the Go operator's
// messages finds the same words.
Error Fail(const std::string& prefix, const std::exception& e) {
  return Error(Errc::kInvalid, prefix + ": " + e.what());
}

std::optional<sr::BootedDeployment> Booted(const fs::path& sysroot, const fs::path& proc_cmdline) {
  return sr::FindBooted(sysroot, ReadFile(proc_cmdline));
}

bool Disabled(const api::ImageBasedUpgrade& ibu, const char* annotation) {
  auto it = ibu.metadata.annotations.find(annotation);
  return it != ibu.metadata.annotations.end() && it->second == "Disabled";
}

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

}  // namespace

Outcome PrepHandler::Run(StageContext& ctx) {
  const api::ImageBasedUpgrade ibu = ctx.Object();
  const auto& seed = ibu.spec.seed_image_ref;
  const fs::path work =
      opts_.work_dir.empty() ? sr::DefaultWorkDir(ctx.paths.sysroot) : opts_.work_dir;
  const std::string target = sr::StaterootNameForVersion(seed.version);
  std::optional<sr::BootedDeployment> booted;
  std::optional<sr::OstreeSysroot> sysroot;
  std::optional<sr::StaterootSetup> setup;
  std::optional<pivot::HostView> host;

  try {
    // 1. The spec and the running release.
    try {
      if (seed.image.empty()) throw Error(Errc::kInvalid, "spec.seedImageRef.image is required");
      if (seed.version.empty())
        throw Error(Errc::kInvalid, "spec.seedImageRef.version is required");
      booted = Booted(ctx.paths.sysroot, opts_.proc_cmdline);
      if (!booted) {
        throw Error(Errc::kInvalid, "the host is not booted from ostree (no ostree= in " +
                                        opts_.proc_cmdline.string() + ")");
      }
      sysroot.emplace(ctx.paths.sysroot);
      host.emplace(pivot::HostView{ctx.paths.sysroot, *booted, ReadFile(opts_.proc_cmdline),
                                   opts_.proc_cmdline, ctx.paths.containers_root,
                                   ctx.paths.config_dir});
      sr::CheckSeedIsNewer(seed.version,
                           pivot::NodeRunningVersion(opts_.node, *host, opts_.running_version,
                                                     sysroot->CommitVersion(booted->checksum)));
      pivot::RefuseOadpContent(ibu);
      ValidateExtraManifestsForPrep(ctx, ibu);
    } catch (const std::exception& e) {
      throw Fail("failed to validate IBU spec", e);
    }
    setup.emplace(*sysroot, work, target);
    setup->set_selinux_enabled(pivot::SelinuxEnabled(opts_.node.selinuxfs));
    // Reference Prep step 2a, before anything is pulled; the bare reference message.
    const auto storage_target = pivot::CheckContainerStorage(opts_.node, *host);

    // 2. The workspace and the seed's labels, read without pulling.
    try {
      EnsureDir(ctx.paths.workspace(), 0700);
    } catch (const std::exception& e) {
      throw Fail("failed to initialize IBU workspace", e);
    }
    const auto [secret, secret_source] = [&] {
      try {
        return PullSecret(ibu, ctx.paths, opts_);
      } catch (const std::exception& e) {
        throw Fail("failed to validate IBU spec", e);
      }
    }();
    auto access = [&](const sr::TransientAuthFile& auth) {
      sr::RegistryAccess a;
      a.authfile = auth.path();
      a.registries_conf = opts_.registries_conf;
      a.policy = opts_.signature_policy;
      return a;
    };
    const fs::path auth_path = ctx.paths.workspace() / "seed-pull-secret";
    JournaledStep(ctx, "prep.validate-seed", [&] {
      ctx.Progress("Validating seed image " + seed.image);
      try {
        sr::TransientAuthFile auth(auth_path, secret, secret_source);
        const auto inspection = sr::InspectSeed(ctx.runner, seed.image, access(auth));
        const auto info = sr::ValidateSeedLabels(inspection.labels);
        pivot::CheckNodeForSeed(opts_.node, *host, storage_target, info);
        if (info && !info->seed_cluster_ocp_version.empty()) {
          sr::CheckSeedVersionMatchesSpec(info->seed_cluster_ocp_version, seed.version);
        }
        sr::SpaceEstimate need;
        need.layer_bytes = static_cast<uint64_t>(inspection.LayerBytes());
        need.unpacked_bytes =
            static_cast<uint64_t>(static_cast<double>(need.layer_bytes) * opts_.seed_expansion);
        need.margin_bytes = opts_.space_margin_bytes;
        setup->CheckSpace(need);
        metrics::ResetProgress();  // a new Prep: /metrics starts its numbers over
      } catch (const std::exception& e) {
        throw Fail("failed to validate seed image info", e);
      }
    });

    // 3. The stateroot, from the seed, in journaled host steps.
    ctx.StartPhase(api::phase::kStateroot);
    auto stateroot_step = [&](const std::string& name, const std::string& what, auto&& body) {
      JournaledStep(ctx, name, [&] {
        ctx.Progress("Stateroot setup in progress: " + what);
        try {
          body();
        } catch (const Error& e) {
          if (e.code() == Errc::kCancelled) throw;
          throw Fail("stateroot setup failed: " + what, e);
        } catch (const std::exception& e) {
          throw Fail("stateroot setup failed: " + what, e);
        }
      });
    };
    stateroot_step("prep.guard", "checking for a stateroot named " + target,
                   [&] { setup->Guard(booted); });
    stateroot_step("prep.fetch", "fetching seed image " + seed.image, [&] {
      sr::TransientAuthFile auth(auth_path, secret, secret_source);
      setup->Fetch(ctx.runner, seed.image, access(auth));
    });
    stateroot_step("prep.os-init", "creating stateroot " + target, [&] { setup->InitStateroot(); });
    stateroot_step("prep.extract", "extracting the seed", [&] {
      auto last = std::chrono::steady_clock::now();
      setup->ExtractSeed([&](uint64_t written) {
        metrics::ReportPrepBytesDone(written);
        if (ctx.cancel.Cancelled()) throw Error(Errc::kCancelled, "cancelled while extracting");
        const auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::seconds(2)) return;
        last = now;
        ctx.Progress("Stateroot setup in progress: extracting the seed (" +
                     sr::HumanBytes(written) + " written)");
      });
      metrics::ReportPrepBytesTotal(metrics::Progress().prep_bytes_done);  // the estimate ends
    });
    // Loaded when a step needs them: a Prep resumed after its scratch dir is gone needs none.
    std::optional<sr::SeedFiles> loaded;
    auto files = [&]() -> const sr::SeedFiles& {
      if (!loaded) loaded = setup->LoadSeedFiles();
      return *loaded;
    };
    std::string checksum;
    {
      // One lock from import to deploy: a prune in between would drop the imported commit.
      auto lock = sysroot->TryLock();
      stateroot_step("prep.check-seed", "checking the seed's manifest.json", [&] {
        const auto info =
            sr::ParseSeedClusterInfo(ParseJson(files().manifest, "manifest.json"), "manifest.json");
        sr::CheckSeedVersionMatchesSpec(info.seed_cluster_ocp_version, seed.version);
      });
      stateroot_step("prep.import", "importing the seed's ostree commit",
                     [&] { checksum = setup->Import(files()); });
      if (checksum.empty() && !ctx.journal.IsDone("prep.etc")) {
        checksum =
            sr::SeedBootedDeployment(ParseJson(files().rpm_ostree, "rpm-ostree.json")).checksum;
      }
      stateroot_step("prep.deploy", "deploying " + checksum.substr(0, 12) + " into " + target, [&] {
        const auto kargs = sr::SeedKernelArgs(
            ParseJson(files().mco_config, "mco-currentconfig.json"), seed.version);
        setup->Deploy(checksum, kargs, files().origin);
      });
    }
    stateroot_step("prep.etc", "applying the seed's /etc", [&] {
      for (const auto& d : sysroot->Deployments()) {
        if (d.stateroot == target && d.checksum == checksum) {
          setup->ApplyEtc(d, files());
          return;
        }
      }
      throw Error(Errc::kNotFound, "the deployment in " + target + " disappeared");
    });
    stateroot_step("prep.finish", "writing the rollback config and the pre-cache inputs", [&] {
      setup->WriteRollbackConfig(sr::AutoRollbackConfig(api::InitMonitorTimeoutSeconds(ibu.spec),
                                                        Disabled(ibu, kAnnInitMonitor),
                                                        Disabled(ibu, kAnnPostReboot)));
      // The pre-cache phase reads these (the Go operator keeps them in /var/tmp).
      WriteFileAtomic(ctx.paths.workspace() / "containers.list", files().containers_list, 0600);
      WriteFileAtomic(ctx.paths.workspace() / "manifest.json", files().manifest, 0600);
    });
    stateroot_step("prep.remove-scratch", "removing the fetched seed",
                   [&] { setup->RemoveWorkDir(); });
    ctx.StopPhase(api::phase::kStateroot);
    // 4. The images the new release needs (precache_phase.hpp).
    const bool precached = RunPrecachePhase(ctx, ibu, opts_.precache).ran;
    // The reference's wording wins when there are warnings: the operator must read them before
    // Upgrade applies the manifests.
    if (ctx.Object().metadata.annotations.contains(
            std::string(pivot::kValidationWarningAnnotation))) {
      return Outcome::Completed(kCompletedWithWarnings);
    }
    return Outcome::Completed(precached ? kCompleted : kCompletedWithoutPrecache);
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) return Outcome::Cancelled();
    // Leave nothing behind: what this Prep made goes now, not only at abort.
    if (setup) {
      try {
        setup->RemovePartial(booted);
      } catch (const std::exception& ce) {
        spdlog::error("Prep failed and removing what it made failed too: {}", ce.what());
      }
    }
    return Outcome::Failed(e.what());
  }
}

}  // namespace lca
