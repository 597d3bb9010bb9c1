#pragma once
// lcactl's commands, each a function of its options and an output stream, so tests can run
// them in-process against a real daemon and read what a user would see.
#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "stateroot/seed_creator.hpp"

namespace lca::cli {

struct Global {
  std::filesystem::path socket = "/run/lca/lca.sock";
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
};

// Each returns the exit code (0 ok, 1 error); errors go to `err` in oc's words.
// output: "", wide, name, json, yaml or jsonpath=TEMPLATE. watch: after the object, print it
// again at every change (a table row without the header, a document, a template's output)
// until the daemon goes away or the process is interrupted.
int Get(const Global& g, const std::vector<std::string>& args, const std::string& output,
        bool no_headers, bool watch, std::ostream& out, std::ostream& err);
int Patch(const Global& g, const std::vector<std::string>& args, const std::string& type,
          const std::string& patch, std::ostream& out, std::ostream& err);
int Annotate(const Global& g, const std::vector<std::string>& args, bool overwrite,
             std::ostream& out, std::ostream& err);
// How wait and status --watch show progress (agent/cli/progress_view.hpp): kAuto draws a bar
// when stdout is a terminal and prints plain lines otherwise (wait: to `err`, so its stdout
// stays "condition met" for scripts).
enum class ProgressMode { kNone, kAuto, kBar, kLines };
// "auto", "bar", "lines", "none"; throws lca::Error kInvalid.
ProgressMode ParseProgressMode(const std::string& text);

int Wait(const Global& g, const std::vector<std::string>& args, const std::string& for_cond,
         const std::string& timeout, std::ostream& out, std::ostream& err,
         ProgressMode progress = ProgressMode::kNone);
int Status(const Global& g, const std::string& output, std::ostream& out, std::ostream& err);
// `lcactl status --watch`: like `oc get -w`, it runs until interrupted (or the daemon goes
// away): progress while work runs, the status page when it settles, and the page again each
// time the object changes while nothing runs (an Idle agent is watched, not left).
int StatusWatch(const Global& g, ProgressMode progress, std::ostream& out, std::ostream& err);
// output "": kubectl's two lines; "json" / "yaml": {"clientVersion": {"lcaVersion": ...},
// "serverVersion": <the daemon's /version>} (serverVersion absent, and exit 1, when the daemon
// does not answer).
int Version(const Global& g, const std::string& output, std::ostream& out, std::ostream& err);

// `lcactl seed create`: local, no daemon involved.
int SeedCreate(const stateroot::SeedCreateOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace lca::cli
