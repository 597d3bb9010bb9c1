// lcactl: the client of lifecycle-agent, with oc/kubectl habits.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "agent/cli/commands.hpp"
#include "agent/cli/precache_commands.hpp"
#include "agent/cli/recovery_commands.hpp"
#include "agent/cli/init_monitor_command.hpp"
#include "agent/cli/manifests_command.hpp"
#include "agent/cli/must_gather.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"
#include "common/timeutil.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lcactl: drive and watch image-based upgrades through lifecycle-agent"};
  app.require_subcommand(1);
  app.set_version_flag("--version", LCA_VERSION);
  lca::cli::Global g;
  std::string socket = g.socket.string(), request_timeout = "30s";
  app.add_option("--socket", socket, "lifecycle-agent API socket")->capture_default_str();
  app.add_option("--request-timeout", request_timeout, "timeout of one API request")
      ->capture_default_str();

  std::vector<std::string> res;
  std::string output, patch_type = "merge", patch, for_cond, timeout = "30s";
  bool no_headers = false, overwrite = false;

  auto* get =
      app.add_subcommand("get", "Show the ImageBasedUpgrade (lcactl get ibu [upgrade] [-o yaml])");
  get->add_option("resource", res, "ibu [upgrade] or ibu/upgrade")->required();
  get->add_option("-o,--output", output, "json, yaml, wide or name");
  get->add_flag("--no-headers", no_headers, "omit the table header");

  auto* pat = app.add_subcommand("patch",
                                 "Change the spec (lcactl patch ibu upgrade --type=merge -p JSON)");
  pat->add_option("resource", res, "ibu upgrade or ibu/upgrade")->required();
  pat->add_option("--type", patch_type, "patch type (merge)")->capture_default_str();
  pat->add_option("-p,--patch", patch, "the merge patch, as JSON")->required();

  auto* ann = app.add_subcommand("annotate", "Set (k=v) or remove (k-) annotations");
  ann->add_option("args", res, "ibu upgrade KEY=VALUE... KEY-...")->required();
  ann->add_flag("--overwrite", overwrite, "replace existing values");

  auto* wait = app.add_subcommand(
      "wait", "Wait for a condition (lcactl wait ibu --for=condition=PrepCompleted --timeout=2h)");
  wait->add_option("resource", res, "ibu [upgrade]")->required();
  wait->add_option("--for", for_cond, "condition=NAME[=True|False]")->required();
  wait->add_option("--timeout", timeout, "give up after this long (30s, 5m, 2h)")
      ->capture_default_str();
  std::string progress = "auto";
  auto progress_check = CLI::IsMember({"auto", "bar", "lines", "none"});
  wait->add_option("--progress", progress,
                   "auto (a bar on a terminal, lines on stderr otherwise), bar, lines, none")
      ->capture_default_str()
      ->check(progress_check);

  auto* status =
      app.add_subcommand("status", "Human view: stage, conditions, valid next stages, history");
  status->add_option("-o,--output", output, "json or yaml instead of the human view");
  bool watch = false;
  status->add_flag("-w,--watch", watch,
                   "follow the work in progress (a bar on a terminal, timestamped lines "
                   "otherwise), then show the status");
  status->add_option("--progress", progress, "with --watch: auto, bar or lines")
      ->capture_default_str()
      ->check(progress_check);

  auto* gather = app.add_subcommand(
      "must-gather",
      "Write a .tar.gz for support: object, journal, log, deployments, disk, config");
  lca::cli::MustGatherOptions mg;
  gather->add_option("-o,--output", mg.output,
                     "archive to write (default ./must-gather-<UTC time>.tar.gz)");
  gather->add_option("--state-dir", mg.state_dir, "lifecycle-agent's state dir")
      ->capture_default_str();
  gather->add_option("--sysroot", mg.sysroot, "the ostree sysroot")->capture_default_str();
  gather->add_option("--config", mg.config_file, "lifecycle-agent's config file")
      ->capture_default_str();
  gather->add_option("--config-dir", mg.config_dir, "the config dir (secrets/ is never read)")
      ->capture_default_str();
  gather->add_option("--containers-root", mg.containers_root, "containers storage")
      ->capture_default_str();
  gather->add_option("--log-file", mg.log_file,
                     "the daemon's log file, used when journalctl has no lifecycle-agent entries");
  gather->add_option("--log-lines", mg.log_lines, "log lines to keep")->capture_default_str();

  auto* version = app.add_subcommand("version", "Client and server versions");
  auto* seed = app.add_subcommand("seed", "Seed images");
  seed->require_subcommand(1);
  auto* seed_create = seed->add_subcommand(
      "create", "Build a format-4 seed image from a deployment of an ostree sysroot");
  lca::stateroot::SeedCreateOptions seed_opts;
  std::string containers_list, authfile, registries_conf, policy;
  seed_create->add_option("--sysroot", seed_opts.sysroot, "the seed host's ostree sysroot")
      ->required();
  seed_create->add_option("--deployment", seed_opts.deployment_index,
                          "deployment index (default 0)");
  seed_create->add_option("--version", seed_opts.version, "the release the seed carries")
      ->required();
  seed_create
      ->add_option("--image", seed_opts.image,
                   "where to put it: a registry reference, or oci:DIR[:TAG]")
      ->required();
  seed_create->add_option("--containers-list", containers_list,
                          "file with the images the release needs, one per line");
  seed_create->add_option("--karg", seed_opts.kernel_args,
                          "kernel argument for the seed's MachineConfig (repeatable; used when "
                          "the tree has no /etc/machine-config-daemon/currentconfig)");
  seed_create->add_option("--release-registry", seed_opts.release_registry, "release registry");
  seed_create->add_option("--authfile", authfile, "credentials for the push (dockerconfigjson)");
  seed_create->add_option("--registries-conf", registries_conf,
                          "containers-registries.conf for the push");
  seed_create->add_option("--policy", policy, "containers-policy.json for the push");
  seed_create->add_option("--work-dir", seed_opts.work_dir, "scratch space (default /var/tmp)");

  auto* completion = app.add_subcommand("completion", "Print a shell completion script (bash)");
  std::string shell;
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));

  auto run_init_monitor = lca::cli::AddInitMonitorCommand(app);
  auto run_manifests = lca::cli::AddManifestsCommand(app);

  auto run_precache = lca::cli::AddPrecacheCommands(app);
  auto recovery = lca::cli::AddRecoveryCommands(app);
  CLI11_PARSE(app, argc, argv);
  if (const int rc = run_precache(); rc >= 0) return rc;
  if (recovery->Selected()) return recovery->Run();
  if (const int rc = run_init_monitor(); rc >= 0) return rc;
  if (const int rc = run_manifests(); rc >= 0) return rc;

  g.socket = socket;
  try {
    g.request_timeout = lca::ParseDuration(request_timeout);
  } catch (const std::exception& e) {
    std::cerr << "error: --request-timeout: " << e.what() << "\n";
    return 1;
  }
  if (*get) return lca::cli::Get(g, res, output, no_headers, std::cout, std::cerr);
  if (*pat) return lca::cli::Patch(g, res, patch_type, patch, std::cout, std::cerr);
  if (*ann) return lca::cli::Annotate(g, res, overwrite, std::cout, std::cerr);
  if (*wait) {
    return lca::cli::Wait(g, res, for_cond, timeout, std::cout, std::cerr,
                          lca::cli::ParseProgressMode(progress));
  }
  if (*status && watch) {
    if (!output.empty()) {
      std::cerr << "error: --watch shows progress for people; it takes no -o\n";
      return 1;
    }
    return lca::cli::StatusWatch(g, lca::cli::ParseProgressMode(progress), std::cout, std::cerr);
  }
  if (*status) return lca::cli::Status(g, output, std::cout, std::cerr);
  if (*gather) {
    mg.socket = g.socket;
    mg.request_timeout = g.request_timeout;
    return lca::cli::MustGatherCommand(mg, std::cout, std::cerr);
  }
  if (*version) return lca::cli::Version(g, std::cout, std::cerr);
  if (*seed_create) {
    lca::SetupLogging("lcactl", "info", lca::LogTarget::kStderr);
    if (!containers_list.empty()) {
      std::ifstream in(containers_list);
      if (!in) {
        std::cerr << "error: --containers-list: cannot read " << containers_list << "\n";
        return 1;
      }
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) seed_opts.containers.push_back(line);
      }
    }
    if (!authfile.empty()) seed_opts.authfile = authfile;
    if (!registries_conf.empty()) seed_opts.registries_conf = registries_conf;
    if (!policy.empty()) seed_opts.policy = policy;
    return lca::cli::SeedCreate(seed_opts, std::cout, std::cerr);
  }
  if (*completion) {
    std::cout << lca::cli::BashCompletion();
    return 0;
  }
  return 1;
}
