#include "agent/metrics/collector.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/api/conditions.hpp"
#include "agent/metrics/exposition.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"

namespace lca::metrics {
namespace {

constexpr size_t kSeenKept = 32;
constexpr const char* kCountersFile = state_layout::kMetrics;

int64_t Unix(TimePoint t) { return t.time_since_epoch().count(); }

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

void RenderCluster(ExpositionWriter& w, const ClusterConnection& c) {
  w.Family("lca_kube_connected", "gauge",
           "1 while the last call to the Kubernetes API server succeeded (Kubernetes mode).");
  w.Sample({{"server", c.server}}, c.connected ? 1 : 0);
  w.Family("lca_kube_last_sync_timestamp_seconds", "gauge",
           "Unix time the cluster's ImageBasedUpgrade and the node's last agreed (0: never).");
  w.Sample({}, static_cast<double>(c.last_sync));
  w.Family("lca_kube_errors_total", "counter",
           "Failed calls to the Kubernetes API server by reason (Unauthorized, Forbidden, "
           "Unreachable, Conflict, ...).");
  for (const auto& [reason, n] : c.errors) w.Sample({{"reason", reason}}, static_cast<double>(n));
  if (!c.last_error_reason.empty()) {
    w.Family("lca_kube_last_error_timestamp_seconds", "gauge",
             "Unix time of the newest failed call to the API server; the label says why.");
    w.Sample({{"reason", c.last_error_reason}}, static_cast<double>(c.last_error));
  }
}

}  // namespace

std::optional<RollbackSeen> RollbackInObject(const api::ImageBasedUpgrade& ibu) {
  if (!ibu.status) return std::nullopt;
  // Every rollback path records why on UpgradeInProgress (False/Failed): the init monitor and a
  // failed post-pivot hook through InitiateRollback (UpgradeFailed), a requested Rollback
  // through RollbackRequested.
  const auto* c = api::FindCondition(*ibu.status, api::ctype::kUpgradeInProgress);
  if (c == nullptr || c->status != api::kFalse) return std::nullopt;
  std::string cause;
  if (StartsWith(c->message, "Rollback due to LCA Init Monitor")) {
    cause = "init-monitor";
  } else if (StartsWith(c->message, "Rollback due to postpivot")) {
    cause = "post-pivot";
  } else if (c->message == api::msg::kRollbackRequested) {
    cause = "manual";
  } else {
    return std::nullopt;
  }
  return RollbackSeen{cause,
                      cause + "@" + ibu.metadata.uid + "@" + FormatTime(c->last_transition_time)};
}

int64_t LastErrorInObject(const api::ImageBasedUpgrade& ibu) {
  int64_t last = 0;
  if (!ibu.status) return 0;
  for (const auto& c : ibu.status->conditions) {
    if (c.reason == api::reason::kFailed || c.reason == api::reason::kAbortFailed ||
        c.reason == api::reason::kFinalizeFailed) {
      last = std::max(last, Unix(c.last_transition_time));
    }
  }
  return last;
}

std::string RenderMetrics(const MetricsInput& in) {
  ExpositionWriter w;
  const auto& ibu = in.object;

  w.Family("lca_stage", "gauge",
           "The stage the ImageBasedUpgrade asks for (spec.stage): 1 for it.");
  for (const auto s : api::kAllStages) {
    w.Sample({{"stage", std::string(api::StageName(s))}}, s == ibu.spec.stage ? 1 : 0);
  }

  w.Family("lca_condition", "gauge",
           "The ImageBasedUpgrade's conditions: 1 per condition, with its status and reason.");
  if (ibu.status) {
    for (const auto& c : ibu.status->conditions) {
      w.Sample({{"type", c.type}, {"status", c.status}, {"reason", c.reason}}, 1);
    }
  }

  if (!in.step.empty()) {
    w.Family("lca_step", "gauge",
             "The journaled host step running now (1 for it; absent between steps).");
    w.Sample({{"step", in.step}}, 1);
  }

  const auto& p = in.progress;
  if (p.prep_reported) {
    w.Family("lca_prep_bytes_done", "gauge",
             "Bytes the seed extraction of Prep's stateroot phase has written.");
    w.Sample({}, static_cast<double>(p.prep_bytes_done));
    w.Family("lca_prep_bytes_total", "gauge",
             "Bytes the seed extraction writes: 0 (unknown) until the extraction is done, then "
             "exact; never an estimate that would later shrink.");
    w.Sample({}, static_cast<double>(p.prep_bytes_total));
  }
  if (in.precache) {
    w.Family("lca_precache_images_done", "gauge",
             "Pre-cache images finished (pulled or failed), from precache_status.json.");
    w.Sample({}, static_cast<double>(in.precache->pulled + in.precache->failed));
    w.Family("lca_precache_images_failed", "gauge", "Pre-cache images that failed to pull.");
    w.Sample({}, static_cast<double>(in.precache->failed));
    w.Family("lca_precache_images_total", "gauge", "Images the pre-cache phase pulls.");
    w.Sample({}, static_cast<double>(in.precache->total));
  }
  if (p.precache_reported) {
    w.Family("lca_precache_bytes_done", "gauge", "Bytes the pre-cache pulls have downloaded.");
    w.Sample({}, static_cast<double>(p.precache_bytes_done));
    w.Family("lca_precache_bytes_total", "gauge",
             "Bytes the pre-cache pulls download (from the registry manifests).");
    w.Sample({}, static_cast<double>(p.precache_bytes_total));
  }
  if (!p.step_seconds.empty()) {
    w.Family("lca_step_duration_seconds", "gauge",
             "How long each journaled host step took the last time it ran in this daemon.");
    for (const auto& [step, secs] : p.step_seconds) w.Sample({{"step", step}}, secs);
  }

  auto seconds = [&](const std::optional<TimePoint>& start, const std::optional<TimePoint>& end) {
    const TimePoint stop = end ? *end : in.now;
    return std::max<double>(0, static_cast<double>(Unix(stop) - Unix(*start)));
  };
  w.Family("lca_stage_duration_seconds", "gauge",
           "How long each stage of the current upgrade ran (so far, while it runs), from "
           "status.history.");
  if (ibu.status) {
    for (const auto& h : ibu.status->history) {
      if (!h.start_time) continue;
      w.Sample({{"stage", std::string(api::StageName(h.stage))}},
               seconds(h.start_time, h.completion_time));
    }
  }
  w.Family("lca_phase_duration_seconds", "gauge",
           "How long each phase of each stage ran (so far, while it runs), from status.history.");
  if (ibu.status) {
    for (const auto& h : ibu.status->history) {
      for (const auto& ph : h.phases) {
        if (!ph.start_time) continue;
        w.Sample({{"stage", std::string(api::StageName(h.stage))}, {"phase", ph.phase}},
                 seconds(ph.start_time, ph.completion_time));
      }
    }
  }

  w.Family("lca_rollbacks_total", "counter",
           "Rollbacks by cause (init-monitor: the init monitor timed out; post-pivot: a "
           "post-pivot hook failed; manual: spec.stage Rollback), counted in this state dir.");
  for (const char* cause : kRollbackCauses) {
    auto it = in.counters.rollbacks.find(cause);
    w.Sample({{"cause", cause}},
             static_cast<double>(it == in.counters.rollbacks.end() ? 0 : it->second));
  }
  w.Family("lca_last_error_timestamp_seconds", "gauge",
           "Unix time of the newest failure (a Failed, AbortFailed or FinalizeFailed condition); "
           "0 when none was seen.");
  w.Sample({}, static_cast<double>(std::max(in.counters.last_error, LastErrorInObject(ibu))));
  if (in.cluster) RenderCluster(w, *in.cluster);
  return w.Text();
}

std::optional<ClusterConnection> ClusterFromSamples(const std::vector<ParsedSample>& samples) {
  std::optional<ClusterConnection> c;
  for (const auto& s : samples) {
    if (!StartsWith(s.name, "lca_kube_")) continue;
    if (!c) c = ClusterConnection{};
    auto label = [&](const char* key) {
      auto it = s.labels.find(key);
      return it == s.labels.end() ? std::string() : it->second;
    };
    if (s.name == "lca_kube_connected") {
      c->connected = s.value == 1;
      c->server = label("server");
    } else if (s.name == "lca_kube_last_sync_timestamp_seconds") {
      c->last_sync = static_cast<int64_t>(s.value);
    } else if (s.name == "lca_kube_errors_total") {
      c->errors[label("reason")] = static_cast<uint64_t>(s.value);
    } else if (s.name == "lca_kube_last_error_timestamp_seconds") {
      c->last_error = static_cast<int64_t>(s.value);
      c->last_error_reason = label("reason");
    }
  }
  return c;
}

MetricsRecorder::MetricsRecorder(std::filesystem::path state_dir)
    : state_dir_(std::move(state_dir)) {
  if (state_dir_.empty()) return;
  const auto file = state_dir_ / kCountersFile;
  try {
    const auto text = ReadFileIfExists(file);
    if (!text) return;
    const Json j = ParseJson(*text, file.string());
    if (j.contains("rollbacks") && j["rollbacks"].is_object()) {
      for (const auto& [cause, n] : j["rollbacks"].items()) {
        if (n.is_number_unsigned()) counters_.rollbacks[cause] = n.get<uint64_t>();
      }
    }
    if (j.contains("seen") && j["seen"].is_array()) {
      for (const auto& k : j["seen"]) {
        if (k.is_string()) counters_.seen.push_back(k.get<std::string>());
      }
    }
    if (j.contains("lastError") && j["lastError"].is_number_integer())
      counters_.last_error = j["lastError"].get<int64_t>();
  } catch (const std::exception& e) {
    // Counters are diagnostics: a damaged file starts them over rather than stop the daemon.
    spdlog::warn("metrics: ignoring {}: {}", file.string(), e.what());
    counters_ = Counters{};
  }
}

void MetricsRecorder::Observe(const api::ImageBasedUpgrade& ibu) {
  std::lock_guard lock(mu_);
  const Counters before = counters_;
  if (const auto rb = RollbackInObject(ibu)) {
    if (std::find(counters_.seen.begin(), counters_.seen.end(), rb->key) == counters_.seen.end()) {
      ++counters_.rollbacks[rb->cause];
      counters_.seen.push_back(rb->key);
      if (counters_.seen.size() > kSeenKept) counters_.seen.erase(counters_.seen.begin());
    }
  }
  counters_.last_error = std::max(counters_.last_error, LastErrorInObject(ibu));
  if (!(counters_ == before)) Save();
}

Counters MetricsRecorder::Snapshot() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::string MetricsRecorder::Render(const api::ImageBasedUpgrade& ibu, TimePoint now) {
  Observe(ibu);
  MetricsInput in;
  in.object = ibu;
  in.now = now;
  in.progress = Progress();
  in.counters = Snapshot();
  {
    std::function<ClusterConnection()> source;
    {
      std::lock_guard lock(mu_);
      source = cluster_source_;
    }
    if (source) in.cluster = source();
  }
  if (!state_dir_.empty()) {
    try {
      in.precache = precache::ReadStatusFile(state_dir_ / state_layout::kWorkspace /
                                             precache::kStatusFileName);
    } catch (const std::exception& e) {
      spdlog::debug("metrics: pre-cache status: {}", e.what());
    }
    // The journal is written atomically before each host step: reading it is what a
    // restarted daemon does too, and needs nothing from the stage handlers.
    try {
      const StepJournal journal(state_dir_);
      if (const JournalStep* running = journal.Interrupted()) in.step = running->name;
    } catch (const std::exception& e) {
      spdlog::debug("metrics: step journal: {}", e.what());
    }
  }
  return RenderMetrics(in);
}

// Called with mu_ held.
void MetricsRecorder::Save() const {
  if (state_dir_.empty()) return;
  Json j = {{"rollbacks", counters_.rollbacks},
            {"seen", counters_.seen},
            {"lastError", counters_.last_error}};
  try {
    WriteFileAtomic(state_dir_ / kCountersFile, j.dump() + "\n", 0600);
  } catch (const std::exception& e) {
    spdlog::warn("metrics: saving counters: {}", e.what());
  }
}

}  // namespace lca::metrics

namespace lca::metrics {

void MetricsRecorder::SetClusterSource(std::function<ClusterConnection()> source) {
  std::lock_guard lock(mu_);
  cluster_source_ = std::move(source);
}

}  // namespace lca::metrics
