#include "agent/cli/commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <ostream>
#include <thread>

#include "agent/api/ibu.hpp"
#include "agent/cli/jsonpath.hpp"
#include "agent/cli/progress_view.hpp"
#include "agent/cli/wait_condition.hpp"
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
// and plural names, optionally with the group or version.group (kubectl's resource.v1.group).
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
                                                  "imagebasedupgrades.lca.openshift.io",
                                                  "imagebasedupgrade.v1.lca.openshift.io",
                                                  "imagebasedupgrades.v1.lca.openshift.io"};
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

// How `get` prints: the table, names, documents or a JSONPath template's output.
class GetPrinter {
 public:
  GetPrinter(const std::string& output, bool no_headers)
      : output_(output), no_headers_(no_headers) {
    if (output.starts_with("jsonpath=")) {
      try {
        template_.emplace(jsonpath::Template::Parse(output.substr(9)));
      } catch (const Error& e) {
        throw CliError{std::string("error: error parsing jsonpath ") + output.substr(9) + ": " +
                       e.what()};
      }
      return;
    }
    if (output != "" && output != "wide" && output != "json" && output != "yaml" &&
        output != "name") {
      throw CliError{"error: unable to match a printer suitable for the output format \"" + output +
                     "\", allowed formats are: json,jsonpath,name,wide,yaml"};
    }
  }

  // The first answer: the object, or (no name given) the list.
  void First(const Json& body, bool list, std::ostream& out, std::ostream& err) {
    std::vector<api::ImageBasedUpgrade> items;
    if (list) {
      for (const auto& item : body.value("items", Json::array())) items.push_back(Decode(item));
    } else {
      items.push_back(Decode(body));
    }
    if (template_) {
      out << template_->Execute(list ? ListOf(items) : api::ToJson(items[0])) << std::flush;
    } else if (output_ == "json" || output_ == "yaml") {
      PrintObject(list ? ListOf(items) : api::ToJson(items[0]), output_, out);
    } else if (items.empty() && output_ != "name") {
      err << "No resources found\n";
    } else {
      for (const auto& it : items) Row(it, out);
    }
    out << std::flush;
  }

  // A change seen by --watch: one object, printed on its own.
  void Change(const Json& obj, std::ostream& out) {
    const auto ibu = Decode(obj);
    if (template_) {
      out << template_->Execute(api::ToJson(ibu));
    } else if (output_ == "yaml") {
      out << "---\n";
      PrintObject(api::ToJson(ibu), output_, out);
    } else if (output_ == "json") {
      PrintObject(api::ToJson(ibu), output_, out);
    } else {
      Row(ibu, out);
    }
    out << std::flush;
  }

 private:
  static Json ListOf(const std::vector<api::ImageBasedUpgrade>& items) {
    Json list = {{"apiVersion", "v1"},
                 {"kind", "List"},
                 {"items", Json::array()},
                 {"metadata", {{"resourceVersion", ""}}}};
    for (const auto& it : items) list["items"].push_back(api::ToJson(it));
    return list;
  }
  void Row(const api::ImageBasedUpgrade& it, std::ostream& out) {
    if (output_ == "name") {
      out << kQualified << "/" << it.metadata.name << "\n";
      return;
    }
    out << RenderTable(it, Now(), output_ == "wide", no_headers_ || header_done_);
    header_done_ = true;
  }

  std::string output_;
  bool no_headers_;
  bool header_done_ = false;
  std::optional<jsonpath::Template> template_;
};

// Follows the watch stream from `rv`, calling `on_change` with each newer object, until the
// daemon goes away (an error) or the process is interrupted. A stream the daemon ends (its
// heartbeat, a restart of the listener) is resumed from the last version seen.
void FollowChanges(const Global& g, const std::string& path, std::string rv,
                   const std::function<void(const Json&)>& on_change) {
  for (;;) {
    std::string server_error;
    http::UnixHttpClient client(g.socket);
    try {
      client.StreamLines(path + "?watch=true&resourceVersion=" + rv, [&](std::string_view line) {
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
        if (type != "ADDED" && type != "MODIFIED") return true;
        rv = ev["object"]["metadata"].value("resourceVersion", rv);
        on_change(ev["object"]);
        return true;
      });
    } catch (const Error& e) {
      throw CliError{std::string("error: ") + e.what()};
    }
    if (!server_error.empty()) throw CliError{server_error};
    // The stream ended: the daemon is stopping, or restarted. Go on if it answers.
    (void)CallJson(g, "GET", "/version");
  }
}

}  // namespace

int Get(const Global& g, const std::vector<std::string>& args, const std::string& output,
        bool no_headers, bool watch, std::ostream& out, std::ostream& err) {
  return Guard(err, [&] {
    const Target t = ParseTarget(args, false);
    GetPrinter printer(output, no_headers);
    const std::string path = t.name.empty() ? kApiCollectionPath : ObjectPath(t.name);
    const Json body = CallJson(g, "GET", path);
    printer.First(body, t.name.empty(), out, err);
    if (!watch) return 0;
    FollowChanges(g, path, body["metadata"].value("resourceVersion", "0"),
                  [&](const Json& obj) { printer.Change(obj, out); });
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
    WaitFor wait_for;
    try {
      wait_for = ParseWaitFor(for_cond);
    } catch (const Error& e) {
      throw CliError{std::string("error: ") + e.what()};
    }
    std::chrono::milliseconds timeout;
    try {
      timeout = ParseDuration(timeout_text);
    } catch (const Error& e) {
      throw CliError{std::string("error: --timeout: ") + e.what()};
    }
    bool ok = false;
    std::string server_error, failure;
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
            const bool object = type == "ADDED" || type == "MODIFIED";
            if (object) {
              const WaitCheck check = CheckWait(ev["object"], wait_for);
              ok = check.verdict == WaitVerdict::kMet;
              failure = check.failure;
              if (check.verdict != WaitVerdict::kWaiting) return false;
            }
            show(object ? &ev["object"] : nullptr);
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
    if (!failure.empty()) {
      throw CliError{"error: imagebasedupgrades/" + t.name + ": condition " + wait_for.type +
                     " will not become " + wait_for.want + ": " + failure};
    }
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
  return Guard(err, [&]() -> int {
    std::string shown;  // resourceVersion of the last status page printed
    for (;;) {
      const auto ibu = Decode(CallJson(g, "GET", ObjectPath(std::string(api::kName))));
      const ProgressState state = ProgressFromObject(ibu, FetchSamples(g));
      if (state.active) {
        printer->Update(state, Now(), std::chrono::steady_clock::now());
      } else if (ibu.metadata.resource_version != shown) {
        printer->Finish();
        if (!shown.empty()) out << "\n";
        out << RenderHuman(ibu, Now()) << std::flush;
        shown = ibu.metadata.resource_version;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

int Version(const Global& g, const std::string& output, std::ostream& out, std::ostream& err) {
  if (output.empty()) {
    out << "Client Version: " << LCA_VERSION << "\n";
    return Guard(err, [&] {
      Json j = CallJson(g, "GET", "/version");
      out << "Server Version: " << j.value("lcaVersion", "unknown") << "\n";
      return 0;
    });
  }
  if (output != "json" && output != "yaml") {
    err << "error: --output must be 'yaml' or 'json'\n";
    return 1;
  }
  Json v = {{"clientVersion", {{"lcaVersion", LCA_VERSION}}}};
  // As kubectl: the client's version is printed even when the server cannot be asked.
  const int rc = Guard(err, [&] {
    v["serverVersion"] = CallJson(g, "GET", "/version");
    return 0;
  });
  PrintObject(v, output, out);
  return rc;
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

}  // namespace lca::cli
