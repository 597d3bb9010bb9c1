#pragma once
// What the cluster's CR and the node-local object share, and which way a difference flows.
// Pure functions, so the rules are unit-tested without a server:
//   spec, labels, annotations  both ways, three-way against the last state both sides agreed
//                              on (the base); without a base the cluster wins ("spec from
//                              the cluster"); a CR recreated with a new uid loses to the node
//                              (the node-local object is the source of truth, as the Go
//                              operator restores its CR from ibu.json)
//   status                     node -> cluster only
#include <optional>
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"
#include "common/json_yaml.hpp"

namespace lca::kube {

// `j` with every object's keys sorted: equality that ignores key order (servers and our
// model order keys differently; Json keeps insertion order).
Json Canonical(const Json& j);

// {"spec": ..., "labels": {...}, "annotations": {...}} of an object in its JSON form.
Json MirroredPart(const Json& object);

// The RFC 7386 merge patch that turns `from` into `to` (removed keys become null; arrays and
// scalars are replaced whole). Empty object when they are equal.
Json MergeDiff(const Json& from, const Json& to);

// A mirrored part as a merge patch body: {"spec": ..., "metadata": {labels, annotations}}.
Json AsObjectPatch(const Json& mirrored_diff);

enum class Flow { kNone, kToNode, kToCluster };
struct Base {
  std::string uid;  // the CR's uid the base was agreed with
  Json mirrored;    // the mirrored part both sides last had
};
Flow Decide(const std::optional<Base>& base, const std::string& cluster_uid, const Json& cluster,
            const Json& node);

// The node's status as the cluster's object carries it: the observedGenerations (status and
// conditions) refer to the cluster's metadata.generation, not the node's, so
// `kubectl wait --for=condition=...` sees them current. `in_sync`: both sides have the same
// spec, so the node's current generation is the cluster's.
Json StatusForCluster(const api::ImageBasedUpgrade& node, int64_t cluster_generation, bool in_sync);

// A core/v1 Event about the CR (Normal, or Warning for a failure).
struct EventSpec {
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};
// The event a stage transition warrants: the last condition (the CR's State/Details columns)
// changed its type, status, reason or message. Reason = the condition's reason, message =
// "<type>: <message>"; Warning for Failed, AbortFailed, FinalizeFailed, InvalidTransition and
// Blocked.
std::optional<EventSpec> StateEvent(const std::optional<api::Status>& before,
                                    const std::optional<api::Status>& after);
Json EventObject(const EventSpec& e, const Json& cluster_object, const std::string& ns,
                 const std::string& host, TimePoint now);

}  // namespace lca::kube
