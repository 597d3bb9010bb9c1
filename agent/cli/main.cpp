// lcactl: the client of lifecycle-agent, with oc/kubectl habits.
#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/cli/commands.hpp"
#include "common/error.hpp"
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

  auto* status =
      app.add_subcommand("status", "Human view: stage, conditions, valid next stages, history");
  status->add_option("-o,--output", output, "json or yaml instead of the human view");

  auto* version = app.add_subcommand("version", "Client and server versions");
  auto* completion = app.add_subcommand("completion", "Print a shell completion script (bash)");
  std::string shell;
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));

  CLI11_PARSE(app, argc, argv);

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
  if (*wait) return lca::cli::Wait(g, res, for_cond, timeout, std::cout, std::cerr);
  if (*status) return lca::cli::Status(g, output, std::cout, std::cerr);
  if (*version) return lca::cli::Version(g, std::cout, std::cerr);
  if (*completion) {
    std::cout << lca::cli::BashCompletion();
    return 0;
  }
  return 1;
}
