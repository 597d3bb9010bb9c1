#include "agent/pivot/node_checks.hpp"

#include <spdlog/spdlog.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "precache/mirrors.hpp"
#include "precache/storage_mount.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;

namespace {

fs::path StaterootVar(const NodeView& host) {
  return host.sysroot / "ostree/deploy" / host.booted.stateroot / "var";
}

void ReadProxy(const NodeCheckOptions& opts, const NodeView& host, stateroot::NodeFacts& f) {
  if (opts.has_proxy) {
    f.has_proxy = *opts.has_proxy;
    f.proxy_source = std::string("hasProxy: ") + (f.has_proxy ? "true" : "false") +
                     " in the lifecycle-agent configuration";
    return;
  }
  const fs::path env = host.booted.deployment_dir / "etc/mco/proxy.env";
  const auto text = ReadFileIfExists(env);
  const std::string key = text ? stateroot::ProxyKeyIn(*text) : "";
  f.has_proxy = !key.empty();
  f.proxy_source = f.has_proxy ? key + " set in the booted deployment's /etc/mco/proxy.env"
                               : "no HTTP_PROXY, HTTPS_PROXY or NO_PROXY in the booted "
                                 "deployment's /etc/mco/proxy.env; set hasProxy in the "
                                 "lifecycle-agent configuration if that is wrong";
}

}  // namespace

std::optional<std::string> CheckContainerStorage(const NodeCheckOptions& opts,
                                                 const NodeView& host) {
  precache::StorageMountInputs in;
  in.storage_root = host.storage_root;
  in.stateroot_var = StaterootVar(host);
  in.booted_deployment = host.booted.deployment_dir;
  in.mountinfo = opts.mountinfo;
  precache::StorageMount mount;
  try {
    mount = precache::CheckSharedContainerStorage(in);
  } catch (const Error& e) {
    if (opts.require_shared_storage) throw;
    spdlog::warn("{} (pre-caching is disabled, so Prep goes on)", e.what());
    return std::nullopt;
  }
  spdlog::info("container storage: {} on {} (target {})", host.storage_root.string(),
               mount.mount_point.string(), mount.target);
  return mount.target;
}

stateroot::NodeFacts GatherNodeFacts(const NodeCheckOptions& opts, const NodeView& host,
                                     const std::optional<std::string>& storage_target) {
  stateroot::NodeFacts f;
  ReadProxy(opts, host, f);
  f.has_fips = stateroot::CmdlineHasFips(host.cmdline);
  f.fips_source = std::string(f.has_fips ? "fips=1" : "no fips=1") +
                  " on the kernel command line (" + host.cmdline_file.string() + ")";
  f.storage_target = storage_target;
  f.release_registry = opts.release_registry;
  f.mirror_sources = precache::MirrorSourcesInDir(host.config_dir / "mirrors");
  return f;
}

void CheckNodeForSeed(const NodeCheckOptions& opts, const NodeView& host,
                      const std::optional<std::string>& storage_target,
                      const std::optional<stateroot::SeedClusterInfo>& seed) {
  stateroot::CheckSeedCompatibility(seed, GatherNodeFacts(opts, host, storage_target));
}

stateroot::RunningVersion NodeRunningVersion(const NodeCheckOptions& opts, const NodeView& host,
                                             const std::optional<std::string>& setting,
                                             const std::string& commit_version) {
  stateroot::RunningVersionInputs in;
  in.cluster_version = opts.cluster_version;
  in.setting = setting;
  in.booted_deployment = host.booted.deployment_dir;
  in.commit_version = commit_version;
  auto v = stateroot::ResolveRunningVersion(in);
  spdlog::info("running version {} (from {})", v.version, v.source);
  return v;
}

void RefuseOadpContent(const api::ImageBasedUpgrade& ibu) {
  if (ibu.spec.oadp_content.empty()) return;
  const auto& first = ibu.spec.oadp_content.front();
  throw Error(Errc::kInvalid,
              "spec.oadpContent (" + first.ns + "/" + first.name +
                  (ibu.spec.oadp_content.size() > 1 ? ", ..." : "") +
                  ") is not supported yet: this agent does not back up or restore application "
                  "data with OADP (the Velero Backups and Restores in those ConfigMaps need the "
                  "OADP operator and one DataProtectionApplication in openshift-adp, which the "
                  "cluster-side support will drive), so the upgrade would go ahead without the "
                  "backups asked for; remove spec.oadpContent and back the applications up "
                  "with a pre-pivot hook (<hooksDir>/pre-pivot.d) instead");
}

bool SelinuxEnabled(const fs::path& selinuxfs) {
  std::error_code ec;
  return fs::exists(selinuxfs / "enforce", ec);
}

}  // namespace lca::pivot
