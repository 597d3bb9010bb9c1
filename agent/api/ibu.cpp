#include "agent/api/ibu.hpp"

#include <initializer_list>

#include "common/error.hpp"

namespace lca::api {
namespace {

// Strict decoder for one JSON object: every access names its field path, and Finish() rejects
// fields the schema does not have (Kubernetes would prune them silently; an operator who
// mistyped "seedImageRef" deserves to hear about it).
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw Invalid(path_, "must be an object");
  }

  static Error Invalid(const std::string& path, const std::string& what) {
    return Error(Errc::kInvalid, path + ": " + what);
  }

  std::string Field(std::string_view name) const {
    return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
  }

  const Json* Get(std::string_view name) {
    seen_.emplace_back(name);
    auto it = j_.find(std::string(name));
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string String(std::string_view name) {
    const Json* v = Get(name);
    if (v == nullptr) return {};
    if (!v->is_string()) throw Invalid(Field(name), "must be a string");
    return v->get<std::string>();
  }

  std::optional<int64_t> Int(std::string_view name) {
    const Json* v = Get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) throw Invalid(Field(name), "must be an integer");
    return v->get<int64_t>();
  }

  std::optional<TimePoint> Time(std::string_view name) {
    const Json* v = Get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) throw Invalid(Field(name), "must be an RFC 3339 time string");
    try {
      return ParseTime(v->get<std::string>());
    } catch (const Error& e) {
      throw Invalid(Field(name), e.what());
    }
  }

  std::map<std::string, std::string> StringMap(std::string_view name) {
    std::map<std::string, std::string> out;
    const Json* v = Get(name);
    if (v == nullptr) return out;
    if (!v->is_object()) throw Invalid(Field(name), "must be a map of strings");
    for (const auto& [k, val] : v->items()) {
      if (!val.is_string()) throw Invalid(Field(name) + "." + k, "must be a string");
      out[k] = val.get<std::string>();
    }
    return out;
  }

  template <class F>
  auto Array(std::string_view name, F&& item) {
    std::vector<decltype(item(std::declval<const Json&>(), std::string()))> out;
    const Json* v = Get(name);
    if (v == nullptr) return out;
    if (!v->is_array()) throw Invalid(Field(name), "must be a list");
    for (size_t i = 0; i < v->size(); ++i) {
      out.push_back(item((*v)[i], Field(name) + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

  // Fields that exist in the schema but are read elsewhere (or ignored, like managedFields).
  void Allow(std::initializer_list<std::string_view> names) {
    for (auto n : names) seen_.emplace_back(n);
  }

  void Finish() const {
    for (const auto& [k, v] : j_.items()) {
      bool known = false;
      for (const auto& s : seen_) known = known || s == k;
      if (!known) throw Invalid(Field(k), "unknown field");
    }
  }

 private:
  const Json& j_;
  std::string path_;
  std::vector<std::string> seen_;
};

Stage StageFrom(const Json& v, const std::string& path) {
  if (!v.is_string()) throw ObjectReader::Invalid(path, "must be a string");
  auto s = ParseStage(v.get<std::string>());
  if (!s) {
    throw ObjectReader::Invalid(
        path, "Unsupported value: \"" + v.get<std::string>() +
                  "\": supported values: \"Idle\", \"Prep\", \"Upgrade\", \"Rollback\"");
  }
  return *s;
}

ConfigMapRef ConfigMapRefFrom(const Json& j, const std::string& path) {
  ObjectReader r(j, path);
  ConfigMapRef ref{r.String("name"), r.String("namespace")};
  r.Finish();
  return ref;
}

Json ConfigMapRefsToJson(const std::vector<ConfigMapRef>& refs) {
  Json arr = Json::array();
  for (const auto& r : refs) arr.push_back(Json{{"name", r.name}, {"namespace", r.ns}});
  return arr;
}

void PutTime(Json& j, const char* key, const std::optional<TimePoint>& t) {
  if (t) j[key] = FormatTime(*t);
}

}  // namespace

std::string_view StageName(Stage s) {
  switch (s) {
    case Stage::kIdle:
      return "Idle";
    case Stage::kPrep:
      return "Prep";
    case Stage::kUpgrade:
      return "Upgrade";
    case Stage::kRollback:
      return "Rollback";
  }
  return "Idle";
}

std::optional<Stage> ParseStage(std::string_view s) {
  for (Stage st : kAllStages) {
    if (StageName(st) == s) return st;
  }
  return std::nullopt;
}

int64_t InitMonitorTimeoutSeconds(const Spec& spec) {
  if (spec.auto_rollback_on_failure &&
      spec.auto_rollback_on_failure->init_monitor_timeout_seconds &&
      *spec.auto_rollback_on_failure->init_monitor_timeout_seconds > 0) {
    return *spec.auto_rollback_on_failure->init_monitor_timeout_seconds;
  }
  return kDefaultInitMonitorTimeoutSeconds;
}

Json SpecToJson(const Spec& spec) {
  Json j = Json::object();
  j["stage"] = StageName(spec.stage);
  // seedImageRef is a value struct in the Go type, so it is always present (possibly {}).
  Json seed = Json::object();
  if (!spec.seed_image_ref.version.empty()) seed["version"] = spec.seed_image_ref.version;
  if (!spec.seed_image_ref.image.empty()) seed["image"] = spec.seed_image_ref.image;
  if (spec.seed_image_ref.pull_secret_ref) {
    seed["pullSecretRef"] = Json{{"name", spec.seed_image_ref.pull_secret_ref->name}};
  }
  j["seedImageRef"] = seed;
  if (!spec.oadp_content.empty()) j["oadpContent"] = ConfigMapRefsToJson(spec.oadp_content);
  if (!spec.extra_manifests.empty())
    j["extraManifests"] = ConfigMapRefsToJson(spec.extra_manifests);
  if (spec.auto_rollback_on_failure) {
    Json arb = Json::object();
    if (spec.auto_rollback_on_failure->init_monitor_timeout_seconds) {
      arb["initMonitorTimeoutSeconds"] =
          *spec.auto_rollback_on_failure->init_monitor_timeout_seconds;
    }
    j["autoRollbackOnFailure"] = arb;
  }
  return j;
}

Spec SpecFromJson(const Json& j) {
  ObjectReader r(j, "spec");
  Spec spec;
  if (const Json* st = r.Get("stage")) spec.stage = StageFrom(*st, "spec.stage");
  if (const Json* seed = r.Get("seedImageRef")) {
    ObjectReader sr(*seed, "spec.seedImageRef");
    spec.seed_image_ref.version = sr.String("version");
    spec.seed_image_ref.image = sr.String("image");
    if (const Json* ps = sr.Get("pullSecretRef")) {
      ObjectReader pr(*ps, "spec.seedImageRef.pullSecretRef");
      spec.seed_image_ref.pull_secret_ref = PullSecretRef{pr.String("name")};
      pr.Finish();
    }
    sr.Finish();
  }
  spec.oadp_content = r.Array("oadpContent", ConfigMapRefFrom);
  spec.extra_manifests = r.Array("extraManifests", ConfigMapRefFrom);
  if (const Json* arb = r.Get("autoRollbackOnFailure")) {
    ObjectReader ar(*arb, "spec.autoRollbackOnFailure");
    spec.auto_rollback_on_failure = AutoRollbackOnFailure{ar.Int("initMonitorTimeoutSeconds")};
    ar.Finish();
  }
  r.Finish();
  return spec;
}

Json StatusToJson(const Status& st) {
  Json j = Json::object();
  if (st.observed_generation != 0) j["observedGeneration"] = st.observed_generation;
  if (!st.conditions.empty()) {
    Json conds = Json::array();
    for (const auto& c : st.conditions) {
      Json cj = Json::object();
      cj["type"] = c.type;
      cj["status"] = c.status;
      if (c.observed_generation != 0) cj["observedGeneration"] = c.observed_generation;
      cj["lastTransitionTime"] = FormatTime(c.last_transition_time);
      cj["reason"] = c.reason;
      cj["message"] = c.message;
      conds.push_back(std::move(cj));
    }
    j["conditions"] = std::move(conds);
  }
  if (!st.valid_next_stages.empty()) {
    Json arr = Json::array();
    for (Stage s : st.valid_next_stages) arr.push_back(StageName(s));
    j["validNextStages"] = std::move(arr);
  }
  PutTime(j, "rollbackAvailabilityExpiration", st.rollback_availability_expiration);
  if (!st.history.empty()) {
    Json hist = Json::array();
    for (const auto& h : st.history) {
      Json hj = Json::object();
      hj["stage"] = StageName(h.stage);
      PutTime(hj, "startTime", h.start_time);
      PutTime(hj, "completionTime", h.completion_time);
      if (!h.phases.empty()) {
        Json phases = Json::array();
        for (const auto& p : h.phases) {
          Json pj = Json::object();
          pj["phase"] = p.phase;
          PutTime(pj, "startTime", p.start_time);
          PutTime(pj, "completionTime", p.completion_time);
          phases.push_back(std::move(pj));
        }
        hj["phases"] = std::move(phases);
      }
      hist.push_back(std::move(hj));
    }
    j["history"] = std::move(hist);
  }
  return j;
}

Status StatusFromJson(const Json& j) {
  ObjectReader r(j, "status");
  Status st;
  st.observed_generation = r.Int("observedGeneration").value_or(0);
  st.conditions = r.Array("conditions", [](const Json& cj, const std::string& path) {
    ObjectReader cr(cj, path);
    Condition c;
    c.type = cr.String("type");
    c.status = cr.String("status");
    c.observed_generation = cr.Int("observedGeneration").value_or(0);
    c.last_transition_time = cr.Time("lastTransitionTime").value_or(TimePoint{});
    c.reason = cr.String("reason");
    c.message = cr.String("message");
    cr.Finish();
    return c;
  });
  st.valid_next_stages = r.Array("validNextStages", StageFrom);
  st.rollback_availability_expiration = r.Time("rollbackAvailabilityExpiration");
  st.history = r.Array("history", [](const Json& hj, const std::string& path) {
    ObjectReader hr(hj, path);
    StageHistory h;
    if (const Json* s = hr.Get("stage")) h.stage = StageFrom(*s, hr.Field("stage"));
    h.start_time = hr.Time("startTime");
    h.completion_time = hr.Time("completionTime");
    h.phases = hr.Array("phases", [](const Json& pj, const std::string& ppath) {
      ObjectReader pr(pj, ppath);
      PhaseHistory p{pr.String("phase"), pr.Time("startTime"), pr.Time("completionTime")};
      pr.Finish();
      return p;
    });
    hr.Finish();
    return h;
  });
  r.Finish();
  return st;
}

Json ToJson(const ImageBasedUpgrade& ibu) {
  Json j = Json::object();
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  Json md = Json::object();
  md["name"] = ibu.metadata.name;
  if (!ibu.metadata.uid.empty()) md["uid"] = ibu.metadata.uid;
  if (!ibu.metadata.resource_version.empty()) md["resourceVersion"] = ibu.metadata.resource_version;
  if (ibu.metadata.generation != 0) md["generation"] = ibu.metadata.generation;
  md["creationTimestamp"] = FormatTime(ibu.metadata.creation_timestamp);
  if (!ibu.metadata.labels.empty()) md["labels"] = ibu.metadata.labels;
  if (!ibu.metadata.annotations.empty()) md["annotations"] = ibu.metadata.annotations;
  j["metadata"] = std::move(md);
  j["spec"] = SpecToJson(ibu.spec);
  if (ibu.status) j["status"] = StatusToJson(*ibu.status);
  return j;
}

ImageBasedUpgrade FromJson(const Json& j) {
  ObjectReader r(j, "");
  ImageBasedUpgrade ibu;
  const std::string api_version = r.String("apiVersion");
  if (!api_version.empty() && api_version != kApiVersion) {
    throw ObjectReader::Invalid("apiVersion", "must be " + std::string(kApiVersion));
  }
  const std::string kind = r.String("kind");
  if (!kind.empty() && kind != kKind)
    throw ObjectReader::Invalid("kind", "must be ImageBasedUpgrade");
  if (const Json* md = r.Get("metadata")) {
    ObjectReader mr(*md, "metadata");
    ibu.metadata.name = mr.String("name");
    ibu.metadata.uid = mr.String("uid");
    ibu.metadata.resource_version = mr.String("resourceVersion");
    ibu.metadata.generation = mr.Int("generation").value_or(0);
    ibu.metadata.creation_timestamp = mr.Time("creationTimestamp").value_or(TimePoint{});
    ibu.metadata.labels = mr.StringMap("labels");
    ibu.metadata.annotations = mr.StringMap("annotations");
    // Kubernetes bookkeeping an exported object may carry; it has no meaning here.
    mr.Allow({"managedFields", "selfLink", "finalizers", "namespace"});
    mr.Finish();
  }
  if (const Json* spec = r.Get("spec")) ibu.spec = SpecFromJson(*spec);
  if (const Json* st = r.Get("status")) ibu.status = StatusFromJson(*st);
  r.Finish();
  return ibu;
}

ImageBasedUpgrade NewDefault(TimePoint now, std::string uid) {
  ImageBasedUpgrade ibu;
  ibu.metadata.name = std::string(kName);
  ibu.metadata.uid = std::move(uid);
  ibu.metadata.generation = 1;
  ibu.metadata.creation_timestamp = now;
  ibu.spec.stage = Stage::kIdle;
  return ibu;
}

}  // namespace lca::api
