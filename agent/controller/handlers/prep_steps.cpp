#include "agent/controller/handlers/prep_steps.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "agent/api/history.hpp"
#include "agent/controller/handlers/precache_phase.hpp"
#include "agent/controller/host_view.hpp"
#include "agent/metrics/progress.hpp"
#include "common/atomic_file.hpp"
#include "common/bytes.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"
#include "stateroot/seed_image.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

constexpr const char* kAnnInitMonitor = "auto-rollback-on-failure.lca.openshift.io/init-monitor";
constexpr const char* kAnnPostReboot =
    "auto-rollback-on-failure.lca.openshift.io/post-reboot-config";

bool Disabled(const api::ImageBasedUpgrade& ibu, const char* annotation) {
  auto it = ibu.metadata.annotations.find(annotation);
  return it != ibu.metadata.annotations.end() && it->second == "Disabled";
}

sr::RegistryAccess Access(const PrepRun& p, const sr::TransientAuthFile& auth) {
  sr::RegistryAccess a;
  a.authfile = auth.path();
  a.registries_conf = p.opts.registries_conf;
  a.policy = p.opts.signature_policy;
  return a;
}

const sr::SeedFiles& Files(PrepRun& p) {
  if (!p.loaded) p.loaded = p.setup->LoadSeedFiles();
  return *p.loaded;
}

const std::string& Checksum(PrepRun& p) {
  if (p.checksum.empty()) {
    p.checksum =
        sr::SeedBootedDeployment(ParseJson(Files(p).rpm_ostree, "rpm-ostree.json")).checksum;
  }
  return p.checksum;
}

void HoldLock(PrepRun& p) {
  if (!p.lock) p.lock.emplace(p.host.sysroot().TryLock());
}

// A step of the Stateroot phase: its progress message, and its failure in the reference's words.
template <class F>
void InStateroot(PrepRun& p, const std::string& what, F&& body) {
  p.ctx.StartPhase(api::phase::kStateroot);
  p.ctx.Progress("Stateroot setup in progress: " + what);
  try {
    body();
  } catch (const Error& e) {
    if (e.code() == Errc::kCancelled) throw;
    throw PrepFailure("stateroot setup failed: " + what, e);
  } catch (const std::exception& e) {
    throw PrepFailure("stateroot setup failed: " + what, e);
  }
}

// The seed's labels, read without pulling, and the space it needs.
void ValidateSeed(PrepRun& p) {
  const auto& seed = p.ibu.spec.seed_image_ref;
  p.ctx.Progress("Validating seed image " + seed.image);
  try {
    sr::TransientAuthFile auth(p.auth_path, p.secret, p.secret_source);
    const auto inspection = sr::InspectSeed(p.ctx.runner, seed.image, Access(p, auth));
    const auto info = sr::ValidateSeedLabels(inspection.labels);
    pivot::CheckNodeForSeed(p.opts.node, p.node, p.storage_target, info);
    if (info && !info->seed_cluster_ocp_version.empty()) {
      sr::CheckSeedVersionMatchesSpec(info->seed_cluster_ocp_version, seed.version);
    }
    sr::SpaceEstimate need;
    need.layer_bytes = static_cast<uint64_t>(inspection.LayerBytes());
    need.unpacked_bytes =
        static_cast<uint64_t>(static_cast<double>(need.layer_bytes) * p.opts.seed_expansion);
    need.margin_bytes = p.opts.space_margin_bytes;
    p.setup->CheckSpace(need);
    metrics::ResetProgress();  // a new Prep: /metrics starts its numbers over
  } catch (const std::exception& e) {
    throw PrepFailure("failed to validate seed image info", e);
  }
}

// Leave nothing behind: what this Prep made goes at its failure, not only at abort.
void RemovePartial(PrepRun& p) {
  p.lock.reset();
  p.setup->RemovePartial(p.host.booted());
}

void Guard(PrepRun& p) {
  InStateroot(p, "checking for a stateroot named " + p.host.target(),
              [&] { p.setup->Guard(p.host.booted()); });
}

void Fetch(PrepRun& p) {
  const std::string& image = p.ibu.spec.seed_image_ref.image;
  InStateroot(p, "fetching seed image " + image, [&] {
    sr::TransientAuthFile auth(p.auth_path, p.secret, p.secret_source);
    p.setup->Fetch(p.ctx.runner, image, Access(p, auth));
  });
}

void OsInit(PrepRun& p) {
  InStateroot(p, "creating stateroot " + p.host.target(), [&] { p.setup->InitStateroot(); });
}

void Extract(PrepRun& p) {
  InStateroot(p, "extracting the seed", [&] {
    auto last = std::chrono::steady_clock::now();
    p.setup->ExtractSeed([&](uint64_t written) {
      metrics::ReportPrepBytesDone(written);
      if (p.ctx.cancel.Cancelled()) throw Error(Errc::kCancelled, "cancelled while extracting");
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(2)) return;
      last = now;
      p.ctx.Progress("Stateroot setup in progress: extracting the seed (" + FormatBytes(written) +
                     " written)");
    });
    metrics::ReportPrepBytesTotal(metrics::Progress().prep_bytes_done);  // the estimate ends
  });
}

void CheckSeed(PrepRun& p) {
  HoldLock(p);
  InStateroot(p, "checking the seed's manifest.json", [&] {
    const auto info =
        sr::ParseSeedClusterInfo(ParseJson(Files(p).manifest, "manifest.json"), "manifest.json");
    sr::CheckSeedVersionMatchesSpec(info.seed_cluster_ocp_version,
                                    p.ibu.spec.seed_image_ref.version);
  });
}

void Import(PrepRun& p) {
  HoldLock(p);
  InStateroot(p, "importing the seed's ostree commit",
              [&] { p.checksum = p.setup->Import(Files(p)); });
}

void Deploy(PrepRun& p) {
  HoldLock(p);
  const std::string checksum = Checksum(p);
  InStateroot(p, "deploying " + checksum.substr(0, 12) + " into " + p.host.target(), [&] {
    const auto kargs = sr::SeedKernelArgs(ParseJson(Files(p).mco_config, "mco-currentconfig.json"),
                                          p.ibu.spec.seed_image_ref.version);
    p.setup->Deploy(checksum, kargs, Files(p).origin);
  });
  p.lock.reset();
}

void ApplyEtc(PrepRun& p) {
  p.lock.reset();
  InStateroot(p, "applying the seed's /etc", [&] {
    for (const auto& d : p.host.sysroot().Deployments()) {
      if (d.stateroot == p.host.target() && d.checksum == Checksum(p)) {
        p.setup->ApplyEtc(d, Files(p));
        return;
      }
    }
    throw Error(Errc::kNotFound, "the deployment in " + p.host.target() + " disappeared");
  });
}

void Finish(PrepRun& p) {
  InStateroot(p, "writing the rollback config and the pre-cache inputs", [&] {
    p.setup->WriteRollbackConfig(sr::AutoRollbackConfig(api::InitMonitorTimeoutSeconds(p.ibu.spec),
                                                        Disabled(p.ibu, kAnnInitMonitor),
                                                        Disabled(p.ibu, kAnnPostReboot)));
    // The pre-cache phase reads these (the Go operator keeps them in /var/tmp).
    const fs::path ws = p.ctx.paths.workspace();
    WriteFileAtomic(ws / state_layout::kContainersList, Files(p).containers_list, 0600);
    WriteFileAtomic(ws / state_layout::kSeedManifest, Files(p).manifest, 0600);
  });
}

void RemoveScratch(PrepRun& p) {
  InStateroot(p, "removing the fetched seed", [&] { p.setup->RemoveWorkDir(); });
  p.ctx.StopPhase(api::phase::kStateroot);
}

// The images the new release needs (precache_phase.hpp).
void Precache(PrepRun& p) {
  p.ctx.StopPhase(api::phase::kStateroot);
  RunPrecachePhase(p.ctx, p.ibu, p.opts.precache);
}

// Weights: rough shares of a Prep's time on a real seed (fetch, extraction, pre-cache dominate).
constexpr Step<PrepRun> kPrepSteps[] = {
    {"prep.validate-seed", 1, &ValidateSeed, &RemovePartial},
    {"prep.guard", 1, &Guard},
    {"prep.fetch", 20, &Fetch},
    {"prep.os-init", 1, &OsInit},
    {"prep.extract", 20, &Extract},
    {"prep.check-seed", 1, &CheckSeed},
    {"prep.import", 5, &Import},
    {"prep.deploy", 3, &Deploy},
    {"prep.etc", 1, &ApplyEtc},
    {"prep.finish", 1, &Finish},
    {"prep.remove-scratch", 1, &RemoveScratch},
    {"prep.precache", 30, &Precache},
};

}  // namespace

Error PrepFailure(const std::string& prefix, const std::exception& e) {
  return Error(Errc::kInvalid, prefix + ": " + e.what());
}

std::span<const Step<PrepRun>> PrepSteps() { return kPrepSteps; }

}  // namespace lca
