#include "agent/kube/mirror.hpp"

#include <algorithm>

namespace lca::kube {

Json Canonical(const Json& j) { return Json::parse(nlohmann::json::parse(j.dump()).dump()); }

Json MirroredPart(const Json& object) {
  Json md = object.value("metadata", Json::object());
  return Json{{"spec", object.value("spec", Json::object())},
              {"labels", md.value("labels", Json::object())},
              {"annotations", md.value("annotations", Json::object())}};
}

Json MergeDiff(const Json& from, const Json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  Json patch = Json::object();
  for (const auto& [key, v] : from.items()) {
    if (!to.contains(key)) patch[key] = nullptr;
  }
  for (const auto& [key, v] : to.items()) {
    if (!from.contains(key)) {
      patch[key] = v;
    } else if (from[key] != v) {
      patch[key] = (from[key].is_object() && v.is_object()) ? MergeDiff(from[key], v) : v;
    }
  }
  return patch;
}

Json AsObjectPatch(const Json& d) {
  Json p = Json::object();
  if (d.contains("spec")) p["spec"] = d["spec"];
  for (const char* key : {"labels", "annotations"}) {
    if (d.contains(key)) p["metadata"][key] = d[key];
  }
  return p;
}

Flow Decide(const std::optional<Base>& base, const std::string& cluster_uid, const Json& cluster,
            const Json& node) {
  if (cluster == node) return Flow::kNone;
  if (!base) return Flow::kToNode;
  // A CR with another uid was recreated (restored from a backup, a new etcd after the pivot):
  // its spec says nothing about what the node was asked to do.
  if (base->uid != cluster_uid) return Flow::kToCluster;
  if (cluster != base->mirrored) return Flow::kToNode;  // both changed: the cluster wins
  return Flow::kToCluster;
}

Json StatusForCluster(const api::ImageBasedUpgrade& node, int64_t cluster_generation,
                      bool in_sync) {
  if (!node.status) return Json::object();
  const int64_t local = node.metadata.generation;
  auto map = [&](int64_t v) -> int64_t {
    if (v == local)
      return in_sync ? cluster_generation : std::max<int64_t>(0, cluster_generation - 1);
    return std::max<int64_t>(0, cluster_generation - (local - v));
  };
  Json s = api::StatusToJson(*node.status);
  if (s.contains("observedGeneration")) s["observedGeneration"] = map(s["observedGeneration"]);
  if (s.contains("conditions")) {
    for (auto& c : s["conditions"]) {
      if (c.contains("observedGeneration")) c["observedGeneration"] = map(c["observedGeneration"]);
    }
  }
  return s;
}

namespace {

const api::Condition* Last(const std::optional<api::Status>& s) {
  return s && !s->conditions.empty() ? &s->conditions.back() : nullptr;
}

bool Same(const api::Condition* a, const api::Condition* b) {
  if (!a || !b) return a == b;
  return a->type == b->type && a->status == b->status && a->reason == b->reason &&
         a->message == b->message;
}

}  // namespace

std::optional<EventSpec> StateEvent(const std::optional<api::Status>& before,
                                    const std::optional<api::Status>& after) {
  const api::Condition* now = Last(after);
  if (!now || Same(Last(before), now)) return std::nullopt;
  static const char* kWarnings[] = {"Failed", "AbortFailed", "FinalizeFailed", "InvalidTransition",
                                    "Blocked"};
  const bool warn =
      std::find(std::begin(kWarnings), std::end(kWarnings), now->reason) != std::end(kWarnings);
  return EventSpec{warn ? "Warning" : "Normal", now->reason, now->type + ": " + now->message};
}

Json EventObject(const EventSpec& e, const Json& cluster_object, const std::string& ns,
                 const std::string& host, TimePoint now) {
  const Json md = cluster_object.value("metadata", Json::object());
  const std::string t = FormatTime(now);
  return Json{{"apiVersion", "v1"},
              {"kind", "Event"},
              {"metadata", {{"generateName", std::string(api::kName) + "."}, {"namespace", ns}}},
              {"involvedObject",
               {{"apiVersion", api::kApiVersion},
                {"kind", api::kKind},
                {"name", api::kName},
                {"uid", md.value("uid", "")},
                {"resourceVersion", md.value("resourceVersion", "")}}},
              {"type", e.type},
              {"reason", e.reason},
              {"message", e.message},
              {"source", {{"component", "lifecycle-agent"}, {"host", host}}},
              {"reportingComponent", "lifecycle-agent"},
              {"reportingInstance", host},
              {"firstTimestamp", t},
              {"lastTimestamp", t},
              {"count", 1}};
}

}  // namespace lca::kube
