#include "agent/cli/precache_commands.hpp"

#include <iostream>
#include <memory>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"
#include "common/timeutil.hpp"
#include "precache/job.hpp"
#include "precache/mirrors.hpp"

namespace lca::cli {

namespace {

struct PrecacheArgs {
  std::string config_dir, status_file, work_dir, authfile, registries_conf, policy, root, runroot,
      driver, timeout = "240m";
  int concurrency = 10;
  bool best_effort = false;
  int gc_threshold = 85;
};

struct MirrorArgs {
  std::vector<std::string> files, insecure;
  std::string output;
};

int RunPrecache(const PrecacheArgs& a) {
  precache::JobOptions o;
  o.config_dir = a.config_dir;
  if (!a.status_file.empty()) o.status_file = a.status_file;
  if (!a.work_dir.empty()) o.work_dir = a.work_dir;
  if (!a.authfile.empty()) o.authfile = a.authfile;
  if (!a.registries_conf.empty()) {
    o.registries_conf = a.registries_conf;
    o.podman.registries_conf = a.registries_conf;
  }
  if (!a.policy.empty()) o.podman.signature_policy = a.policy;
  if (!a.root.empty()) o.podman.root = a.root;
  o.podman.runroot = a.runroot;
  if (!a.runroot.empty()) o.podman.tmpdir = std::filesystem::path(a.runroot) / "libpod-tmp";
  o.podman.storage_driver = a.driver;
  o.concurrency = static_cast<size_t>(std::max(1, a.concurrency));
  o.best_effort = a.best_effort;
  o.gc_high_threshold_percent = a.gc_threshold;
  try {
    o.timeout = std::chrono::duration_cast<std::chrono::seconds>(ParseDuration(a.timeout));
  } catch (const std::exception& e) {
    std::cerr << "error: --timeout: " << e.what() << "\n";
    return precache::kJobExitUnrecoverable;
  }
  if (o.timeout.count() == 0) o.timeout = std::chrono::seconds(1);
  SetupLogging("lcactl", "warn", LogTarget::kStderr);
  SystemProcessRunner runner;
  const auto out = precache::RunPrecacheJob(runner, o, std::cerr);
  std::cout << precache::JobStateName(out.state) << "\n";
  return precache::JobExitCode(out.state);
}

int RunMirrors(const MirrorArgs& a) {
  try {
    std::vector<precache::MirrorRule> rules;
    for (const auto& f : a.files) {
      auto r = precache::ParseMirrorManifests(ReadFile(f), f);
      rules.insert(rules.end(), r.begin(), r.end());
    }
    const std::string text = precache::RenderRegistriesConf(rules, a.insecure);
    if (a.output.empty() || a.output == "-") {
      std::cout << text;
    } else {
      WriteFileAtomic(a.output, text, 0644);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

std::function<int()> AddPrecacheCommands(CLI::App& app) {
  auto pa = std::make_shared<PrecacheArgs>();
  auto* pc = app.add_subcommand(
      "precache",
      "Run TALM's pre-cache job on this node: the pre-cache-spec ConfigMap keys as files in "
      "--config; prints the final state (exit 0 Succeeded, 3 PrecacheTimeout, 1 otherwise)");
  pc->add_option("--config", pa->config_dir,
                 "dir with platform.image, operators.indexes, operators.packagesAndChannels, "
                 "excludePrecachePatterns, additionalImages, spaceRequired")
      ->required();
  pc->add_option("--status-file", pa->status_file,
                 "state file (default /var/lib/lca/precache-job/status.json)");
  pc->add_option("--work-dir", pa->work_dir, "scratch (default /var/lib/lca/precache-job)");
  pc->add_option("--authfile", pa->authfile, "pull secret (default /var/lib/kubelet/config.json)");
  pc->add_option("--registries-conf", pa->registries_conf, "containers-registries.conf");
  pc->add_option("--signature-policy", pa->policy, "containers-policy.json for pulls");
  pc->add_option("--root", pa->root,
                 "containers-storage root (default /var/lib/containers/storage)");
  pc->add_option("--runroot", pa->runroot, "podman --runroot");
  pc->add_option("--storage-driver", pa->driver, "podman --storage-driver");
  pc->add_option("--concurrency", pa->concurrency, "pulls at once (MAX_PULL_THREADS)")
      ->capture_default_str();
  pc->add_option("--timeout", pa->timeout, "deadline, then PrecacheTimeout")->capture_default_str();
  pc->add_option("--gc-high-threshold", pa->gc_threshold, "kubelet imageGCHighThresholdPercent")
      ->capture_default_str();
  pc->add_flag("--best-effort", pa->best_effort, "succeed even if some images fail");

  auto ma = std::make_shared<MirrorArgs>();
  auto* mirrors = app.add_subcommand("mirrors", "Registry mirror configuration");
  mirrors->require_subcommand(1);
  auto* render = mirrors->add_subcommand(
      "render", "ImageContentSourcePolicy / ImageDigestMirrorSet YAML -> registries.conf (v2)");
  render->add_option("-f,--filename", ma->files, "manifest file (repeatable)")->required();
  render->add_option("-o,--output", ma->output,
                     "write here (e.g. /etc/containers/registries.conf.d/99-lca-mirrors.conf); "
                     "default stdout");
  render->add_option("--insecure-registry", ma->insecure,
                     "host[:port] whose registry and mirror entries get insecure = true");

  return [pa, ma, pc, render]() -> int {
    if (*pc) return RunPrecache(*pa);
    if (*render) return RunMirrors(*ma);
    return -1;
  };
}

}  // namespace lca::cli
