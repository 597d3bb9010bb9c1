#include "agent/server/api_routes.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>

#include "agent/api/ibu.hpp"
#include "agent/store/object_store.hpp"
#include "common/error.hpp"
#include "common/text_excerpt.hpp"

namespace lca {
namespace {

const std::string kCollection = kApiCollectionPath;
const std::string kObjectPath = kCollection + "/" + std::string(api::kName);

// Messages quote input (a path, a field's value); the cap keeps a 1 MiB field out of answers
// and logs.
constexpr std::size_t kMaxMessageBytes = 4096;

http::Response JsonResponse(int code, const Json& body) {
  http::Response r;
  r.status = code;
  // Every string in a body is valid UTF-8 (parsed JSON, Excerpt()); replacing rather than
  // throwing on a bad byte keeps a mistake of ours from turning an answer into a 500.
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return r;
}

http::Response Failure(int code, const std::string& reason, const std::string& message) {
  return JsonResponse(code, StatusBody(code, reason, Excerpt(message, kMaxMessageBytes)));
}

// A non-negative decimal number, all of `text`; nullopt otherwise ("12abc", "-1", "").
std::optional<uint64_t> ParseCount(const std::string& text) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

// What the API server says for a rejected write, mapped from our error codes.
http::Response FromError(const Error& e, const std::string& name) {
  const std::string resource = "imagebasedupgrades.lca.openshift.io " + Quoted(name);
  switch (e.code()) {
    case Errc::kInvalid:
      return Failure(
          422, "Invalid",
          "ImageBasedUpgrade.lca.openshift.io " + Quoted(name) + " is invalid: " + e.what());
    case Errc::kForbidden:
      return Failure(403, "Forbidden", resource + " is forbidden: " + e.what());
    case Errc::kConflict:
      return Failure(409, "Conflict", e.what());
    case Errc::kNotFound:
      return Failure(404, "NotFound", resource + " not found");
    default:
      return Failure(500, "InternalError", e.what());
  }
}

Json ListBody(const api::ImageBasedUpgrade& obj) {
  Json list = Json::object();
  list["apiVersion"] = api::kApiVersion;
  list["kind"] = "ImageBasedUpgradeList";
  list["metadata"] = Json{{"resourceVersion", obj.metadata.resource_version}};
  list["items"] = Json::array({api::ToJson(obj)});
  return list;
}

bool TruthyQuery(const http::Request& req, const char* key) {
  auto it = req.query.find(key);
  return it != req.query.end() && (it->second == "true" || it->second == "1");
}

// A watch streams {"type": ADDED|MODIFIED|BOOKMARK, "object": ...} lines. Changes are
// coalesced: a watcher sees the newest state, never a stale intermediate one.
void Watch(ObjectStore& store, const ApiOptions& opts, const http::Request& req,
           http::ResponseSink& sink) {
  uint64_t since = 0;
  bool send_initial = true;
  if (auto it = req.query.find("resourceVersion"); it != req.query.end() && !it->second.empty()) {
    const auto rv = ParseCount(it->second);
    if (!rv) return sink.Send(Failure(400, "BadRequest", "resourceVersion: must be a number"));
    since = *rv;
    send_initial = false;  // Kubernetes: start after that version
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (auto it = req.query.find("timeoutSeconds"); it != req.query.end()) {
    const auto seconds = ParseCount(it->second);
    if (!seconds) {
      return sink.Send(Failure(400, "BadRequest", "timeoutSeconds: must be a non-negative number"));
    }
    // A year is "forever" here and keeps the deadline far from the clock's overflow.
    deadline = std::chrono::steady_clock::now() +
               std::chrono::seconds(std::min<uint64_t>(*seconds, 366ULL * 24 * 3600));
  }
  if (!sink.BeginStream(200, "application/json")) return;
  auto event = [&](const char* type, const api::ImageBasedUpgrade& obj) {
    return sink.Write(Json{{"type", type}, {"object", api::ToJson(obj)}}.dump() + "\n");
  };
  if (send_initial) {
    auto obj = store.Get();
    since = std::stoull(obj.metadata.resource_version);
    if (!event("ADDED", obj)) return;
  } else if (store.ResourceVersion() > since) {
    auto obj = store.Get();
    since = std::stoull(obj.metadata.resource_version);
    if (!event("MODIFIED", obj)) return;
  }
  while (!sink.Stopping() && !store.IsShutdown()) {
    auto wait = opts.watch_heartbeat;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      wait = std::min(wait, left);
    }
    const uint64_t now_version = store.WaitForChange(since, wait);
    if (now_version > since) {
      auto obj = store.Get();
      since = std::stoull(obj.metadata.resource_version);
      if (!event("MODIFIED", obj)) return;
    } else {
      Json bookmark = {{"type", "BOOKMARK"},
                       {"object",
                        {{"apiVersion", api::kApiVersion},
                         {"kind", api::kKind},
                         {"metadata", {{"resourceVersion", std::to_string(since)}}}}}};
      if (!sink.Write(bookmark.dump() + "\n")) return;
    }
  }
}

void ApplyPatch(ObjectStore& store, const http::Request& req, const Json& patch,
                http::ResponseSink& sink) {
  auto result = store.ApplyMergePatch(patch);
  http::Response r = JsonResponse(200, api::ToJson(result.object));
  for (const auto& w : result.warnings) {
    spdlog::info("patch from uid {} accepted with warning: {}", req.peer.uid, w);
    r.headers.emplace_back("Warning", "299 - " + Json(w).dump());
  }
  if (result.changed) {
    spdlog::info("patch from uid {} (pid {}): {}", req.peer.uid, req.peer.pid,
                 Excerpt(patch.dump(), 4096));
  }
  sink.Send(r);
}

void HandlePatch(ObjectStore& store, const http::Request& req, http::ResponseSink& sink) {
  const std::string ctype = req.Header("content-type");
  if (ctype.rfind("application/merge-patch+json", 0) != 0) {
    sink.Send(Failure(415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/merge-patch+json"));
    return;
  }
  Json patch;
  try {
    patch = ParseJson(req.body, "patch");
  } catch (const Error& e) {
    sink.Send(Failure(400, "BadRequest", std::string("error decoding patch: ") + e.what()));
    return;
  }
  try {
    ApplyPatch(store, req, patch, sink);
  } catch (const Error& e) {
    spdlog::info("patch from uid {} rejected: {}", req.peer.uid, Excerpt(e.what(), 1024));
    sink.Send(FromError(e, std::string(api::kName)));
  } catch (const Json::exception& e) {
    // A JSON type mismatch the admission checks did not name: still the patch's fault.
    spdlog::info("patch from uid {} rejected: {}", req.peer.uid, JsonErrorMessage(e.what()));
    sink.Send(Failure(400, "BadRequest", "error applying patch: " + JsonErrorMessage(e.what())));
  }
}

// There is exactly one object and the agent created it: a create is either a duplicate or
// a second object, and both are refused the way the API server would refuse them.
void HandleCreate(const http::Request& req, http::ResponseSink& sink) {
  Json body;
  try {
    body = ParseJson(req.body, "object");
  } catch (const Error& e) {
    sink.Send(Failure(400, "BadRequest", e.what()));
    return;
  }
  std::string name;
  if (body.is_object() && body.contains("metadata") && body["metadata"].is_object() &&
      body["metadata"].contains("name") && body["metadata"]["name"].is_string()) {
    name = body["metadata"]["name"].get<std::string>();
  }
  if (name == api::kName) {
    sink.Send(Failure(409, "AlreadyExists",
                      "imagebasedupgrades.lca.openshift.io " + Quoted(name) + " already exists"));
    return;
  }
  sink.Send(Failure(422, "Invalid",
                    "ImageBasedUpgrade.lca.openshift.io " + Quoted(name) +
                        " is invalid: metadata.name: Invalid value: " + Quoted(name) +
                        ": ImageBasedUpgrade is a singleton and must be named 'upgrade'"));
}

}  // namespace

Json StatusBody(int code, const std::string& reason, const std::string& message) {
  return Json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", Json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason},
              {"code", code}};
}

http::Handler MakeApiHandler(ObjectStore& store, ApiOptions opts) {
  return [&store, opts](const http::Request& req, http::ResponseSink& sink) {
    const std::string& p = req.path;
    if (p == "/healthz" || p == "/readyz") {
      http::Response r;
      r.content_type = "text/plain";
      r.body = "ok";
      sink.Send(r);
      return;
    }
    if (p == "/metrics" && opts.metrics) {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      try {
        r.body = opts.metrics();
      } catch (const std::exception& e) {
        return sink.Send(Failure(500, "InternalError", std::string("metrics: ") + e.what()));
      }
      return sink.Send(r);
    }
    if (p == kPathsPath && !opts.paths.is_null()) {
      if (req.method != "GET")
        return sink.Send(
            Failure(405, "MethodNotAllowed", req.method + " is not supported on " + p));
      return sink.Send(JsonResponse(200, opts.paths));
    }
    if (p == "/version") {
      sink.Send(JsonResponse(200, Json{{"lcaVersion", opts.agent_version}}));
      return;
    }
    if (p == kCollection || p == kCollection + "/") {
      if (req.method == "GET") {
        if (TruthyQuery(req, "watch")) return Watch(store, opts, req, sink);
        return sink.Send(JsonResponse(200, ListBody(store.Get())));
      }
      if (req.method == "POST") return HandleCreate(req, sink);
      return sink.Send(
          Failure(405, "MethodNotAllowed", req.method + " is not supported on " + kCollection));
    }
    if (p.rfind(kCollection + "/", 0) == 0) {
      std::string rest = p.substr(kCollection.size() + 1);
      std::string sub;
      if (auto slash = rest.find('/'); slash != std::string::npos) {
        sub = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
      }
      if (rest != api::kName) {
        return sink.Send(Failure(
            404, "NotFound", "imagebasedupgrades.lca.openshift.io " + Quoted(rest) + " not found"));
      }
      if (sub == "status") {
        if (req.method == "GET") return sink.Send(JsonResponse(200, api::ToJson(store.Get())));
        return sink.Send(Failure(403, "Forbidden",
                                 "imagebasedupgrades.lca.openshift.io \"upgrade\" is forbidden: "
                                 "status is written by lifecycle-agent only; patch spec or "
                                 "metadata"));
      }
      if (!sub.empty()) {
        return sink.Send(
            Failure(404, "NotFound", "the server could not find the requested resource"));
      }
      if (req.method == "GET") {
        if (TruthyQuery(req, "watch")) return Watch(store, opts, req, sink);
        return sink.Send(JsonResponse(200, api::ToJson(store.Get())));
      }
      if (req.method == "PATCH") return HandlePatch(store, req, sink);
      return sink.Send(Failure(405, "MethodNotAllowed",
                               req.method + " is not supported on " + kObjectPath +
                                   " (use GET or PATCH with application/merge-patch+json)"));
    }
    sink.Send(Failure(404, "NotFound", "the server could not find the requested resource"));
  };
}

http::Authorizer MakeRootAuthorizer() {
  const uid_t self = ::geteuid();
  return [self](const http::PeerCred& peer) { return peer.uid == 0 || peer.uid == self; };
}

}  // namespace lca
