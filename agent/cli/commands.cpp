#include "agent/cli/commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <ostream>
#include <thread>

#include "agent/api/ibu.hpp"
#include "agent/cli/progress_view.hpp"
#include "agent/client/unix_http_client.hpp"
#include "agent/server/api_routes.hpp"
#include "agent/status/render.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"

#ifndef LCA_VERSION
#define LCA_VERSION "0.0.0"
#endif

namespace lca::cli {
namespace {

const std::string kQualified = "imagebasedupgrade.lca.openshift.io";

// A failed call, already worded for the user.
struct CliError {
  std::string message;
};

// The resource argument forms oc accepts: "ibu", "ibu upgrade", "ibu/upgrade", and the long
// and plural names, optionally with the group.
struct Target {
  std::string name;  // empty: the collection
};

Target ParseTarget(const std::vector<std::string>& args, bool name_required) {
  if (args.empty()) {
    throw CliError{"error: you must specify the type of resource to get (ibu)"};
  }
  std::string type = args[0];
  std::string name;
  if (auto slash = type.find('/'); slash != std::string::npos) {
    name = type.substr(slash + 1);
    type = type.substr(0, slash);
    if (args.size() > 1)
      throw CliError{
          "error: there is no need to specify a resource type as a separate argument when passing "
          "arguments in resource/name form"};
  } else if (args.size() > 1) {
    name = args[1];
    if (args.size() > 2) throw CliError{"error: only one ImageBasedUpgrade exists: 'upgrade'"};
  }
  static const std::vector<std::string> kTypes = {"ibu",
                                                  "ibus",
                                                  "imagebasedupgrade",
                                                  "imagebasedupgrades",
                                                  "imagebasedupgrade.lca.openshift.io",
                                                  "imagebasedupgrades.lca.openshift.io"};
  std::string lower = type;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (std::find(kTypes.begin(), kTypes.end(), lower) == kTypes.end()) {
    throw CliError{"error: the server doesn't have a resource type \"" + type + "\""};
  }
  if (name_required && name.empty()) {
    throw CliError{"error: resource name may not be empty (the ImageBasedUpgrade is 'upgrade')"};
  }
  return Target{name};
}

std::string ObjectPath(const std::string& name) {
  return std::string(kApiCollectionPath) + "/" + name;
}

// The server's Status body, or the raw body when it is not one.
std::string ServerError(const http::ClientReply& reply) {
  try {
    const Json j = Json::parse(reply.body);
    if (j.is_object() && j.value("kind", "") == "Status") {
      return "Error from server (" + j.value("reason", "Unknown") + "): " + j.value("message", "");
    }
  } catch (const std::exception&) {
  }
  return "Error from server (" + std::to_string(reply.status) + "): " + reply.body;
}

http::ClientReply Call(const Global& g, const std::string& method, const std::string& path,
                       const std::string& body = "", const std::string& ctype = "") {
  http::UnixHttpClient client(g.socket);
  try {
    return client.Request(method, path, body, ctype, g.request_timeout);
  } catch (const Error& e) {
    throw CliError{std::string("error: ") + e.what()};
  }
}

Json CallJson(const Global& g, const std::string& method, const std::string& path,
              const std::string& body = "", const std::string& ctype = "",
              std::ostream* warnings = nullptr) {
  auto reply = Call(g, method, path, body, ctype);
  if (warnings != nullptr) {
    auto it = reply.headers.find("warning");
    if (it != reply.headers.end()) {
      for (const auto& w : it->second) {
        // "299 - \"text\"": show the text, as kubectl does.
        std::string text = w;
        if (auto q = w.find('"'); q != std::string::npos) {
          try {
            text = Json::parse(w.substr(q)).get<std::string>();
          } catch (const std::exception&) {
          }
        }
        *warnings << "Warning: " << text << "\n";
      }
    }
  }
  if (reply.status < 200 || reply.status >= 300) throw CliError{ServerError(reply)};
  try {
    return Json::parse(reply.body);
  } catch (const std::exception& e) {
    throw CliError{std::string("error: the server sent invalid JSON: ") + e.what()};
  }
}

api::ImageBasedUpgrade Decode(const Json& j) {
  try {
    return api::FromJson(j);
  } catch (const Error& e) {
    throw CliError{std::string("error: decoding the server's object: ") + e.what()};
  }
}

template <class F>
int Guard(std::ostream& err, F&& f) {
  try {
    return f();
  } catch (const CliError& e) {
    err << e.message << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
}

// The daemon's metrics samples; empty when it has none (progress then shows words only).
std::vector<metrics::ParsedSample> FetchSamples(const Global& g) {
  try {
    http::UnixHttpClient client(g.socket);
    const auto reply = client.Request("GET", "/metrics", "", "", std::chrono::seconds(2));
    if (reply.status != 200) return {};
    return metrics::ParseExposition(reply.body);
  } catch (const std::exception&) {
    return {};
  }
}

// A bar on a terminal, lines otherwise; nullopt for kNone. `lines_out` gets the lines.
std::optional<ProgressPrinter> MakePrinter(ProgressMode mode, std::ostream& bar_out,
                                           std::ostream& lines_out) {
  if (mode == ProgressMode::kNone) return std::nullopt;
  const bool terminal =
      mode == ProgressMode::kBar || (mode == ProgressMode::kAuto && ::isatty(STDOUT_FILENO) == 1);
  if (terminal)
    return std::optional<ProgressPrinter>(std::in_place, bar_out, true,
                                          TerminalWidth(STDOUT_FILENO));
  return std::optional<ProgressPrinter>(std::in_place, lines_out, false, 0);
}

void PrintObject(const Json& j, const std::string& output, std::ostream& out) {
  if (output == "json") {
    out << j.dump(4) << "\n";
  } else {
    out << ToYaml(j);
  }
}

}  // namespace

int Get(const Global& g, const std::vector<std::string>& args, const std::string& output,
        bool no_headers, std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    const Target t = ParseTarget(args, false);
    if (output != "" && output != "wide" && output != "json" && output != "yaml" &&
        output != "name") {
      throw CliError{"error: unable to match a printer suitable for the output format \"" + output +
                     "\", allowed formats are: json,name,wide,yaml"};
    }
    Json j = CallJson(g, "GET", t.name.empty() ? kApiCollectionPath : ObjectPath(t.name));
    std::vector<api::ImageBasedUpgrade> items;
    if (t.name.empty()) {
      for (const auto& item : j.value("items", Json::array())) items.push_back(Decode(item));
    } else {
      items.push_back(Decode(j));
    }
    if (output == "json" || output == "yaml") {
      if (t.name.empty()) {
        Json list = {{"apiVersion", "v1"},
                     {"kind", "List"},
                     {"items", Json::array()},
                     {"metadata", {{"resourceVersion", ""}}}};
        for (const auto& it : items) list["items"].push_back(api::ToJson(it));
        PrintObject(list, output, out);
      } else {
        PrintObject(api::ToJson(items[0]), output, out);
      }
      return 0;
    }
    if (output == "name") {
      for (const auto& it : items) out << kQualified << "/" << it.metadata.name << "\n";
      return 0;
    }
    if (items.empty()) {
      err << "No resources found\n";
      return 0;
    }
    bool first = true;
    for (const auto& it : items) {
      out << RenderTable(it, Now(), output == "wide", no_headers || !first);
      first = false;
    }
    return 0;
  });
}

int Patch(const Global& g, const std::vector<std::string>& args, const std::string& type,
          const std::string& patch, std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    const Target t = ParseTarget(args, true);
    if (type != "merge") {
      throw CliError{"error: --type " + type +
                     " is not supported by lifecycle-agent: use --type=merge (RFC 7386)"};
    }
    if (patch.empty()) throw CliError{"error: must specify -p to patch"};
    // Checked here too so a typo gets a local, precise message before anything is sent.
    try {
      (void)ParseJson(patch, "patch");
    } catch (const Error& e) {
      throw CliError{std::string("error: unable to parse \"") + patch + "\": " + e.what()};
    }
    const std::string before_rv = [&] {
      try {
        return CallJson(g, "GET", ObjectPath(t.name))["metadata"].value("resourceVersion", "");
      } catch (const CliError&) {
        return std::string();
      }
    }();
    Json obj =
        CallJson(g, "PATCH", ObjectPath(t.name), patch, "application/merge-patch+json", &err);
    const bool changed = obj["metadata"].value("resourceVersion", "") != before_rv;
    out << kQualified << "/" << t.name << " patched" << (changed ? "" : " (no change)") << "\n";
    return 0;
  });
}

int Annotate(const Global& g, const std::vector<std::string>& args, bool overwrite,
             std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    // "ibu upgrade k=v k2-" or "ibu/upgrade k=v": the resource, then the changes.
    std::vector<std::string> resource, changes;
    for (const auto& a : args) {
      const bool resource_done =
          !resource.empty() && (resource[0].find('/') != std::string::npos || resource.size() == 2);
      (resource_done ? changes : resource).push_back(a);
    }
    const Target t = ParseTarget(resource, true);
    if (changes.empty()) throw CliError{"error: at least one annotation update is required"};
    Json current = CallJson(g, "GET", ObjectPath(t.name));
    const Json existing = current["metadata"].value("annotations", Json::object());
    Json annotations = Json::object();
    for (const auto& c : changes) {
      if (c.back() == '-' && c.find('=') == std::string::npos) {
        annotations[c.substr(0, c.size() - 1)] = nullptr;
        continue;
      }
      const auto eq = c.find('=');
      const std::string key = c.substr(0, eq), value = c.substr(eq + 1);
      if (key.empty()) throw CliError{"error: invalid annotation spec \"" + c + "\""};
      if (!overwrite && existing.contains(key) && existing[key] != value) {
        throw CliError{
            "error: --overwrite is false but found the following declared annotation(s): '" + key +
            "' already has a value (" + existing[key].get<std::string>() + ")"};
      }
      annotations[key] = value;
    }
    Json patch = {{"metadata", {{"annotations", annotations}}}};
    CallJson(g, "PATCH", ObjectPath(t.name), patch.dump(), "application/merge-patch+json", &err);
    out << kQualified << "/" << t.name << " annotated\n";
    return 0;
  });
}

ProgressMode ParseProgressMode(const std::string& text) {
  if (text == "auto") return ProgressMode::kAuto;
  if (text == "bar") return ProgressMode::kBar;
  if (text == "lines") return ProgressMode::kLines;
  if (text == "none") return ProgressMode::kNone;
  throw Error(Errc::kInvalid, "--progress: '" + text + "' is not one of auto, bar, lines, none");
}

int Wait(const Global& g, const std::vector<std::string>& args, const std::string& for_cond,
         const std::string& timeout_text, std::ostream& out, std::ostream& err,
         ProgressMode progress) {
  auto printer = MakePrinter(progress, out, err);
  auto last_shown = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  // Called for each watch event: the object when it changed, else the previous one.
  std::optional<api::ImageBasedUpgrade> shown;
  auto show = [&](const Json* obj) {
    if (!printer) return;
    const auto now = std::chrono::steady_clock::now();
    if (obj == nullptr && now - last_shown < std::chrono::milliseconds(500)) return;
    if (obj != nullptr) {
      try {
        shown = api::FromJson(*obj);
      } catch (const std::exception&) {
        return;
      }
    }
    if (!shown) return;
    last_shown = now;
    printer->Update(ProgressFromObject(*shown, FetchSamples(g)), Now(), now);
  };
  struct FinishBar {
    std::optional<ProgressPrinter>& p;
    ~FinishBar() {
      if (p) p->Finish();
    }
  } finish_bar{printer};
  return Guard(err, [&] {
    std::vector<std::string> res = args;
    if (res.size() == 1 && res[0].find('/') == std::string::npos)
      res.push_back(std::string(api::kName));
    const Target t = ParseTarget(res, true);
    const std::string prefix = "condition=";
    if (for_cond.rfind(prefix, 0) != 0) {
      throw CliError{
          "error: --for must be condition=NAME[=VALUE] (e.g. --for=condition=PrepCompleted)"};
    }
    std::string cond = for_cond.substr(prefix.size()), want = "True";
    if (auto eq = cond.find('='); eq != std::string::npos) {
      want = cond.substr(eq + 1);
      cond = cond.substr(0, eq);
    }
    if (cond.empty()) throw CliError{"error: --for=condition= needs a condition name"};
    std::chrono::milliseconds timeout;
    try {
      timeout = ParseDuration(timeout_text);
    } catch (const Error& e) {
      throw CliError{std::string("error: --timeout: ") + e.what()};
    }
    auto met = [&](const Json& obj) {
      for (const auto& c : obj.value("status", Json::object()).value("conditions", Json::array())) {
        if (c.value("type", "") != cond) continue;
        std::string have = c.value("status", ""), w = want;
        std::transform(have.begin(), have.end(), have.begin(), ::tolower);
        std::transform(w.begin(), w.end(), w.begin(), ::tolower);
        return have == w;
      }
      return false;
    };
    bool ok = false;
    std::string server_error;
    http::UnixHttpClient client(g.socket);
    const std::string path = ObjectPath(t.name) + "?watch=true&timeoutSeconds=" +
                             std::to_string(std::max<long long>(1, timeout.count() / 1000 + 1));
    try {
      const long status = client.StreamLines(
          path,
          [&](std::string_view line) {
            if (line.empty()) return true;
            Json ev;
            try {
              ev = Json::parse(line);
            } catch (const std::exception&) {
              return true;
            }
            if (ev.value("kind", "") == "Status") {
              server_error =
                  "Error from server (" + ev.value("reason", "") + "): " + ev.value("message", "");
              return false;
            }
            const std::string type = ev.value("type", "");
            if ((type == "ADDED" || type == "MODIFIED") && met(ev["object"])) {
              ok = true;
              return false;
            }
            show(type == "ADDED" || type == "MODIFIED" ? &ev["object"] : nullptr);
            return true;
          },
          timeout);
      if (!ok && server_error.empty() && (status < 200 || status >= 300)) {
        server_error = "Error from server (" + std::to_string(status) + ")";
      }
    } catch (const Error& e) {
      if (e.code() != Errc::kTimeout) throw CliError{std::string("error: ") + e.what()};
    }
    if (printer) printer->Finish();
    if (!server_error.empty()) throw CliError{server_error};
    if (!ok) {
      throw CliError{"error: timed out waiting for the condition on imagebasedupgrades/" + t.name};
    }
    out << kQualified << "/" << t.name << " condition met\n";
    return 0;
  });
}

int Status(const Global& g, const std::string& output, std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    if (output != "" && output != "json" && output != "yaml") {
      throw CliError{"error: -o must be json or yaml (or omitted for the human view)"};
    }
    Json j = CallJson(g, "GET", ObjectPath(std::string(api::kName)));
    if (!output.empty()) {
      PrintObject(j, output, out);
      return 0;
    }
    out << RenderHuman(Decode(j), Now(), metrics::ClusterFromSamples(FetchSamples(g)));
    return 0;
  });
}

int StatusWatch(const Global& g, ProgressMode progress, std::ostream& out, std::ostream& err) {
  if (progress == ProgressMode::kNone) progress = ProgressMode::kLines;
  auto printer = MakePrinter(progress, out, out);
  return Guard(err, [&] {
    for (;;) {
      const auto ibu = Decode(CallJson(g, "GET", ObjectPath(std::string(api::kName))));
      const ProgressState state = ProgressFromObject(ibu, FetchSamples(g));
      if (!state.active) {
        printer->Finish();
        out << RenderHuman(ibu, Now());
        return 0;
      }
      printer->Update(state, Now(), std::chrono::steady_clock::now());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

int Version(const Global& g, std::ostream& out, std::ostream& err) {
  out << "Client Version: " << LCA_VERSION << "\n";
  return Guard(err, [&] {
    Json j = CallJson(g, "GET", "/version");
    out << "Server Version: " << j.value("lcaVersion", "unknown") << "\n";
    return 0;
  });
}

int SeedCreate(const stateroot::SeedCreateOptions& opts, std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    SystemProcessRunner runner;
    const auto r = WithContext("seed create", [&] { return stateroot::CreateSeed(runner, opts); });
    out << "seed " << opts.version << " created: " << r.image << " (manifest " << r.manifest_digest
        << ", layer " << r.layer_bytes << " bytes)\n";
    return 0;
  });
}

std::string BashCompletion() {
  return R"(# bash completion for lcactl                      -*- shell-script -*-
_lcactl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    COMPREPLY=(); cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  }
  local cmds="get patch annotate wait status version seed completion must-gather"
  local i cmd=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --socket|--request-timeout) ((i++)) ;;
      -*) ;;
      *) cmd="${words[i]}"; break ;;
    esac
  done
  case "$prev" in
    -o|--output)
      COMPREPLY=($(compgen -W "json yaml wide name" -- "$cur")); return ;;
    --type)
      COMPREPLY=($(compgen -W "merge" -- "$cur")); return ;;
    --socket)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "$cmds --socket --request-timeout --help" -- "$cur")); return
  fi
  case "$cmd" in
    get|patch|annotate|wait)
      local n=0
      for ((i = i + 1; i < cword; i++)); do [[ "${words[i]}" != -* ]] && ((n++)); done
      if ((n == 0)); then COMPREPLY=($(compgen -W "ibu" -- "$cur"))
      elif ((n == 1)); then COMPREPLY=($(compgen -W "upgrade" -- "$cur"))
      else
        case "$cmd" in
          get) COMPREPLY=($(compgen -W "-o --output --no-headers" -- "$cur")) ;;
          patch) COMPREPLY=($(compgen -W "--type -p --patch" -- "$cur")) ;;
          annotate) COMPREPLY=($(compgen -W "--overwrite lca.openshift.io/manual-cleanup-done= lca.openshift.io/trigger-reconcile= auto-rollback-on-failure.lca.openshift.io/post-reboot-config=Disabled auto-rollback-on-failure.lca.openshift.io/upgrade-completion=Disabled auto-rollback-on-failure.lca.openshift.io/init-monitor=Disabled image-cleanup.lca.openshift.io/on-prep=Disabled" -- "$cur")) ;;
          wait) COMPREPLY=($(compgen -W "--for=condition=Idle --for=condition=PrepCompleted --for=condition=UpgradeCompleted --for=condition=RollbackCompleted --timeout= --progress=" -- "$cur")) ;;
        esac
      fi ;;
    status) COMPREPLY=($(compgen -W "-o --output --watch --progress" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
    must-gather) COMPREPLY=($(compgen -W "-o --output --state-dir --sysroot --config --config-dir --containers-root --log-file --log-lines" -- "$cur")) ;;
    seed) COMPREPLY=($(compgen -W "create --sysroot --deployment --version --image --containers-list --karg --authfile --registries-conf --policy --release-registry --work-dir" -- "$cur")) ;;
  esac
}
complete -F _lcactl lcactl
)";
}

}  // namespace lca::cli
