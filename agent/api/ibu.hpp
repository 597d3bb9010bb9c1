#pragma once
// The ImageBasedUpgrade object (lca.openshift.io/v1), field for field as the Go operator's CRD
// so that `oc get ibu -o json` and `lcactl get ibu -o json` print the same shape.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"

namespace lca::api {

inline constexpr std::string_view kGroup = "lca.openshift.io";
inline constexpr std::string_view kApiVersion = "lca.openshift.io/v1";
inline constexpr std::string_view kKind = "ImageBasedUpgrade";
inline constexpr std::string_view kPlural = "imagebasedupgrades";
inline constexpr std::string_view kName = "upgrade";  // the object is a singleton

// spec.autoRollbackOnFailure.initMonitorTimeoutSeconds absent or 0 means this.
inline constexpr int64_t kDefaultInitMonitorTimeoutSeconds = 1800;

enum class Stage { kIdle, kPrep, kUpgrade, kRollback };
inline constexpr Stage kAllStages[] = {Stage::kIdle, Stage::kPrep, Stage::kUpgrade,
                                       Stage::kRollback};
std::string_view StageName(Stage s);
std::optional<Stage> ParseStage(std::string_view s);

struct Condition {
  std::string type;
  std::string status;  // "True" | "False" | "Unknown"
  int64_t observed_generation = 0;
  TimePoint last_transition_time{};
  std::string reason;
  std::string message;
  bool operator==(const Condition&) const = default;
};

struct PullSecretRef {
  std::string name;
  bool operator==(const PullSecretRef&) const = default;
};

struct SeedImageRef {
  std::string version;
  std::string image;
  std::optional<PullSecretRef> pull_secret_ref;
  bool operator==(const SeedImageRef&) const = default;
};

struct ConfigMapRef {
  std::string name;
  std::string ns;  // JSON "namespace"
  bool operator==(const ConfigMapRef&) const = default;
};

struct AutoRollbackOnFailure {
  std::optional<int64_t> init_monitor_timeout_seconds;
  bool operator==(const AutoRollbackOnFailure&) const = default;
};

struct Spec {
  Stage stage = Stage::kIdle;
  SeedImageRef seed_image_ref;
  std::vector<ConfigMapRef> oadp_content;
  std::vector<ConfigMapRef> extra_manifests;
  std::optional<AutoRollbackOnFailure> auto_rollback_on_failure;
  bool operator==(const Spec&) const = default;
};

struct PhaseHistory {
  std::string phase;
  std::optional<TimePoint> start_time;
  std::optional<TimePoint> completion_time;
  bool operator==(const PhaseHistory&) const = default;
};

struct StageHistory {
  Stage stage = Stage::kIdle;
  std::optional<TimePoint> start_time;
  std::optional<TimePoint> completion_time;
  std::vector<PhaseHistory> phases;
  bool operator==(const StageHistory&) const = default;
};

struct Status {
  int64_t observed_generation = 0;
  std::vector<Condition> conditions;
  std::vector<Stage> valid_next_stages;
  std::optional<TimePoint> rollback_availability_expiration;
  std::vector<StageHistory> history;
  bool operator==(const Status&) const = default;
};

struct Metadata {
  std::string name;
  std::string uid;
  int64_t generation = 0;
  std::string resource_version;
  TimePoint creation_timestamp{};
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool operator==(const Metadata&) const = default;
};

struct ImageBasedUpgrade {
  Metadata metadata;
  Spec spec;
  std::optional<Status> status;  // absent until the agent first writes it (CEL's has(status))
  bool operator==(const ImageBasedUpgrade&) const = default;
};

// The effective init-monitor timeout: the spec value, or the default when absent or 0.
int64_t InitMonitorTimeoutSeconds(const Spec& spec);

// JSON with the CRD's exact field names. Decoding is strict: an unknown field, a wrong type or
// an unknown stage is an lca::Error kInvalid naming the field path ("spec.stage: ...").
Json ToJson(const ImageBasedUpgrade& ibu);
ImageBasedUpgrade FromJson(const Json& j);
Json SpecToJson(const Spec& spec);
Json StatusToJson(const Status& status);
Spec SpecFromJson(const Json& j);
Status StatusFromJson(const Json& j);

// A new object as the agent creates it on first start: spec.stage Idle and nothing else.
ImageBasedUpgrade NewDefault(TimePoint now, std::string uid);

}  // namespace lca::api
