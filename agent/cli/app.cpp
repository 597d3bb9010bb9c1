#include "agent/cli/app.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>

#include "agent/cli/commands.hpp"
#include "agent/cli/completion.hpp"
#include "agent/cli/init_monitor_command.hpp"
#include "agent/cli/manifests_command.hpp"
#include "agent/cli/must_gather.hpp"
#include "agent/cli/precache_commands.hpp"
#include "agent/cli/recovery_commands.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"
#include "common/timeutil.hpp"

#ifndef LCA_VERSION
#define LCA_VERSION "0.0.0"
#endif

namespace lca::cli {

struct Lcactl::State {
  CLI::App app{"lcactl: drive and watch image-based upgrades through lifecycle-agent"};
  Global g;
  std::string socket = g.socket.string(), request_timeout = "30s", ns;
  std::vector<std::string> res;
  std::string output, patch_type = "merge", patch, for_cond, timeout = "30s", progress = "auto";
  bool no_headers = false, overwrite = false, watch = false;
  CLI::App *get = nullptr, *patch_cmd = nullptr, *annotate = nullptr, *wait = nullptr,
           *status = nullptr, *gather = nullptr, *version = nullptr, *seed_create = nullptr,
           *completion = nullptr;
  MustGatherOptions mg;
  std::vector<CLI::Option*> mg_paths;  // given on the command line: the daemon's answer is not used
  stateroot::SeedCreateOptions seed_opts;
  std::string containers_list, authfile, registries_conf, policy, shell;
  std::function<int()> run_init_monitor, run_precache, run_manifests;
  std::unique_ptr<RecoveryCommands> recovery;
};

namespace {

const auto kProgressModes = CLI::IsMember({"auto", "bar", "lines", "none"});

// oc and kubectl take -n everywhere; the ImageBasedUpgrade is cluster-scoped, so, as oc does
// for a cluster-scoped kind, the namespace is accepted and has no effect.
void AddNamespaceEverywhere(CLI::App& app, std::string& ns) {
  bool has = false;
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& n : o->get_snames()) has = has || n == "n";
    for (const auto& n : o->get_lnames()) has = has || n == "namespace";
  }
  if (!has) {
    app.add_option("-n,--namespace", ns,
                   "accepted for oc habits and ignored: the ImageBasedUpgrade is cluster-scoped");
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    AddNamespaceEverywhere(*sub, ns);
  }
}

void AddResourceCommands(Lcactl::State& s) {
  s.get = s.app.add_subcommand(
      "get", "Show the ImageBasedUpgrade (lcactl get ibu [upgrade] [-o yaml|jsonpath=...] [-w])");
  s.get->add_option("resource", s.res, "ibu [upgrade] or ibu/upgrade")->required();
  s.get->add_option("-o,--output", s.output, "json, yaml, wide, name or jsonpath=TEMPLATE");
  s.get->add_flag("--no-headers", s.no_headers, "omit the table header");
  s.get->add_flag("-w,--watch", s.watch,
                  "after the object, print it again each time it changes (until interrupted)");

  s.patch_cmd = s.app.add_subcommand(
      "patch", "Change the spec (lcactl patch ibu upgrade --type=merge -p JSON)");
  s.patch_cmd->add_option("resource", s.res, "ibu upgrade or ibu/upgrade")->required();
  s.patch_cmd->add_option("--type", s.patch_type, "patch type (merge)")->capture_default_str();
  s.patch_cmd->add_option("-p,--patch", s.patch, "the merge patch, as JSON")->required();

  s.annotate = s.app.add_subcommand("annotate", "Set (k=v) or remove (k-) annotations");
  s.annotate->add_option("args", s.res, "ibu upgrade KEY=VALUE... KEY-...")->required();
  s.annotate->add_flag("--overwrite", s.overwrite, "replace existing values");

  s.wait = s.app.add_subcommand(
      "wait",
      "Wait for a condition (lcactl wait ibu --for=condition=PrepCompleted --timeout=2h); "
      "fails at once when the stage it waits on has failed");
  s.wait->add_option("resource", s.res, "ibu [upgrade]")->required();
  s.wait->add_option("--for", s.for_cond, "condition=NAME[=True|False]")->required();
  s.wait->add_option("--timeout", s.timeout, "give up after this long (30s, 5m, 2h)")
      ->capture_default_str();
  s.wait
      ->add_option("--progress", s.progress,
                   "auto (a bar on a terminal, lines on stderr otherwise), bar, lines, none")
      ->capture_default_str()
      ->check(kProgressModes);
}

void AddStatusCommands(Lcactl::State& s) {
  s.status =
      s.app.add_subcommand("status", "Human view: stage, conditions, valid next stages, history");
  s.status->add_option("-o,--output", s.output, "json or yaml instead of the human view");
  s.status->add_flag("-w,--watch", s.watch,
                     "keep watching (until interrupted): progress while work runs (a bar on a "
                     "terminal, timestamped lines otherwise), the status page when it settles "
                     "and again whenever the object changes");
  s.status->add_option("--progress", s.progress, "with --watch: auto, bar or lines")
      ->capture_default_str()
      ->check(kProgressModes);
  s.version = s.app.add_subcommand("version", "Client and server versions");
  s.version->add_option("-o,--output", s.output, "json or yaml")
      ->check(CLI::IsMember({"json", "yaml"}));
  s.completion =
      s.app.add_subcommand("completion", "Print a shell completion script (bash or zsh)");
  s.completion->add_option("shell", s.shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
}

void AddGatherCommand(Lcactl::State& s) {
  s.gather = s.app.add_subcommand(
      "must-gather",
      "Write a .tar.gz for support: object, journal, log, deployments, disk, config (the paths "
      "the running lifecycle-agent uses, unless given here)");
  auto& mg = s.mg;
  s.gather->add_option("-o,--output", mg.output,
                       "archive to write (default ./must-gather-<UTC time>.tar.gz)");
  s.mg_paths = {
      s.gather->add_option("--state-dir", mg.state_dir, "lifecycle-agent's state dir"),
      s.gather->add_option("--sysroot", mg.sysroot, "the ostree sysroot"),
      s.gather->add_option("--config", mg.config_file, "lifecycle-agent's config file"),
      s.gather->add_option("--config-dir", mg.config_dir,
                           "the config dir (secrets/ is never read)"),
      s.gather->add_option("--containers-root", mg.containers_root, "containers storage"),
  };
  for (auto* o : s.mg_paths) o->capture_default_str();
  s.gather->add_option(
      "--log-file", mg.log_file,
      "the daemon's log file, used when journalctl has no lifecycle-agent entries");
  s.gather->add_option("--log-lines", mg.log_lines, "log lines to keep")->capture_default_str();
}

void AddSeedCommand(Lcactl::State& s) {
  auto* seed = s.app.add_subcommand("seed", "Seed images");
  seed->require_subcommand(1);
  s.seed_create = seed->add_subcommand(
      "create", "Build a format-4 seed image from a deployment of an ostree sysroot");
  auto* c = s.seed_create;
  auto& o = s.seed_opts;
  c->add_option("--sysroot", o.sysroot, "the seed host's ostree sysroot")->required();
  c->add_option("--deployment", o.deployment_index, "deployment index (default 0)");
  c->add_option("--version", o.version, "the release the seed carries")->required();
  c->add_option("--image", o.image, "where to put it: a registry reference, or oci:DIR[:TAG]")
      ->required();
  c->add_option("--containers-list", s.containers_list,
                "file with the images the release needs, one per line");
  c->add_option("--karg", o.kernel_args,
                "kernel argument for the seed's MachineConfig (repeatable; used when "
                "the tree has no /etc/machine-config-daemon/currentconfig)");
  c->add_option("--release-registry", o.release_registry, "release registry");
  c->add_option("--authfile", s.authfile, "credentials for the push (dockerconfigjson)");
  c->add_option("--registries-conf", s.registries_conf, "containers-registries.conf for the push");
  c->add_option("--policy", s.policy, "containers-policy.json for the push");
  c->add_option("--work-dir", o.work_dir, "scratch space (default /var/tmp)");
}

int RunSeedCreate(Lcactl::State& s, std::ostream& out, std::ostream& err) {
  SetupLogging("lcactl", "info", LogTarget::kStderr);
  if (!s.containers_list.empty()) {
    std::ifstream in(s.containers_list);
    if (!in) {
      err << "error: --containers-list: cannot read " << s.containers_list << "\n";
      return 1;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) s.seed_opts.containers.push_back(line);
    }
  }
  if (!s.authfile.empty()) s.seed_opts.authfile = s.authfile;
  if (!s.registries_conf.empty()) s.seed_opts.registries_conf = s.registries_conf;
  if (!s.policy.empty()) s.seed_opts.policy = s.policy;
  return SeedCreate(s.seed_opts, out, err);
}

int RunMustGather(Lcactl::State& s, std::ostream& out, std::ostream& err) {
  s.mg.socket = s.g.socket;
  s.mg.request_timeout = s.g.request_timeout;
  MustGatherPathsGiven given;
  given.state_dir = s.mg_paths[0]->count() > 0;
  given.sysroot = s.mg_paths[1]->count() > 0;
  given.config_file = s.mg_paths[2]->count() > 0;
  given.config_dir = s.mg_paths[3]->count() > 0;
  given.containers_root = s.mg_paths[4]->count() > 0;
  UseDaemonPaths(s.mg, given, err);
  return MustGatherCommand(s.mg, out, err);
}

// The option of `app` spelled `word` ("-o", "--output"), if any.
const CLI::Option* FindOption(const CLI::App& app, const std::string& word) {
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& n : o->get_snames()) {
      if (word == "-" + n) return o;
    }
    for (const auto& n : o->get_lnames()) {
      if (word == "--" + n) return o;
    }
  }
  return nullptr;
}

}  // namespace

Lcactl::Lcactl() : s_(std::make_unique<State>()) {
  auto& app = s_->app;
  app.require_subcommand(1);
  // kubectl takes its global flags anywhere: `lcactl get ibu --socket S` too.
  app.fallthrough();
  app.set_version_flag("--version", LCA_VERSION);
  app.add_option("--socket", s_->socket, "lifecycle-agent API socket")->capture_default_str();
  app.add_option("--request-timeout", s_->request_timeout, "timeout of one API request")
      ->capture_default_str();
  AddResourceCommands(*s_);
  AddStatusCommands(*s_);
  AddGatherCommand(*s_);
  AddSeedCommand(*s_);
  s_->run_init_monitor = AddInitMonitorCommand(app);
  s_->run_manifests = AddManifestsCommand(app);
  s_->run_precache = AddPrecacheCommands(app);
  s_->recovery = AddRecoveryCommands(app);
  AddNamespaceEverywhere(app, s_->ns);
}

Lcactl::~Lcactl() = default;

CLI::App& Lcactl::app() { return s_->app; }

int Lcactl::Main(std::vector<std::string> args, std::ostream& out, std::ostream& err) {
  args = NormalizeArgs(s_->app, std::move(args));
  if (auto unknown = UnknownCommand(s_->app, args)) {
    err << *unknown << "\nRun 'lcactl --help' for usage.\n";
    return 1;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    s_->app.parse(args);
  } catch (const CLI::ParseError& e) {
    return s_->app.exit(e, out, err);
  }
  return Run(out, err);
}

int Lcactl::Run(std::ostream& out, std::ostream& err) {
  auto& s = *s_;
  if (const int rc = s.run_precache(); rc >= 0) return rc;
  if (s.recovery->Selected()) return s.recovery->Run();
  if (const int rc = s.run_init_monitor(); rc >= 0) return rc;
  if (const int rc = s.run_manifests(); rc >= 0) return rc;
  if (*s.seed_create) return RunSeedCreate(s, out, err);
  if (*s.completion) {
    out << (s.shell == "zsh" ? ZshCompletion(s.app) : BashCompletion(s.app));
    return 0;
  }
  s.g.socket = s.socket;
  try {
    s.g.request_timeout = ParseDuration(s.request_timeout);
  } catch (const std::exception& e) {
    err << "error: --request-timeout: " << e.what() << "\n";
    return 1;
  }
  if (*s.get) return Get(s.g, s.res, s.output, s.no_headers, s.watch, out, err);
  if (*s.patch_cmd) return Patch(s.g, s.res, s.patch_type, s.patch, out, err);
  if (*s.annotate) return Annotate(s.g, s.res, s.overwrite, out, err);
  if (*s.wait) {
    return Wait(s.g, s.res, s.for_cond, s.timeout, out, err, ParseProgressMode(s.progress));
  }
  if (*s.status && s.watch) {
    if (!s.output.empty()) {
      err << "error: --watch shows progress for people; it takes no -o\n";
      return 1;
    }
    return StatusWatch(s.g, ParseProgressMode(s.progress), out, err);
  }
  if (*s.status) return Status(s.g, s.output, out, err);
  if (*s.gather) return RunMustGather(s, out, err);
  if (*s.version) return Version(s.g, s.output, out, err);
  return 1;
}

namespace {

// Every short option name that takes a value, anywhere in the tree ("n", "o", "p", "f").
void ValueShorts(const CLI::App& app, std::set<std::string>& out) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_items_expected_min() == 0) continue;
    for (const auto& n : o->get_snames()) out.insert(n);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    ValueShorts(*sub, out);
  }
}

}  // namespace

std::vector<std::string> NormalizeArgs(const CLI::App& app, std::vector<std::string> args) {
  std::set<std::string> shorts;
  ValueShorts(app, shorts);
  std::vector<std::string> out;
  bool value_next = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") {
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    const bool is_value = value_next;
    value_next = false;
    if (!is_value && a.size() >= 3 && a[0] == '-' && a[1] != '-' && a[2] == '=' &&
        shorts.count(a.substr(1, 1)) != 0) {
      out.push_back(a.substr(0, 2));
      out.push_back(a.substr(3));
      continue;
    }
    // "-p VALUE": the next word is a value even when it looks like "-p=..."
    value_next = !is_value && a.size() == 2 && a[0] == '-' && shorts.count(a.substr(1)) != 0;
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args) {
  const CLI::App* cur = &app;
  std::string path = "lcactl";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return std::nullopt;
    if (a.size() > 1 && a[0] == '-') {
      // "--opt value" skips the value; "--opt=value" and "-ovalue" carry it.
      const CLI::Option* o = FindOption(*cur, a);
      if (o != nullptr && o->get_items_expected_min() > 0) ++i;
      continue;
    }
    const auto subs = cur->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return std::nullopt;
    const auto it = std::find_if(subs.begin(), subs.end(),
                                 [&](const CLI::App* sub) { return sub->get_name() == a; });
    if (it == subs.end()) return "error: unknown command \"" + a + "\" for \"" + path + "\"";
    cur = *it;
    path += " " + a;
  }
  return std::nullopt;
}

}  // namespace lca::cli
