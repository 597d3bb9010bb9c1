#pragma once
// The agent's metrics (names lca_*), rendered from the object, the live progress, the
// pre-cache status file and a few counters kept in the state dir:
//   lca_stage{stage}                                   1 for spec.stage, 0 for the others
//   lca_condition{type,status,reason}                  1 per condition of the object
//   lca_step{step}                                     1 for the journaled host step running
//   lca_prep_bytes_done / lca_prep_bytes_total         seed extraction (Prep's stateroot phase)
//   lca_precache_images_done / _failed / _total        from workspace/precache_status.json
//   lca_precache_bytes_done / lca_precache_bytes_total the pre-cache pulls
//   lca_stage_duration_seconds{stage}                  from status.history (running: so far)
//   lca_phase_duration_seconds{stage,phase}            likewise per phase
//   lca_rollbacks_total{cause}                         init-monitor | post-pivot | manual
//   lca_last_error_timestamp_seconds                   the newest failure condition (0: none)
//   lca_kube_*                                         Kubernetes mode only (cluster.hpp)
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"
#include "agent/metrics/cluster.hpp"
#include "agent/metrics/progress.hpp"
#include "precache/progress.hpp"

namespace lca::metrics {

inline constexpr const char* kRollbackCauses[] = {"init-monitor", "post-pivot", "manual"};

// The rollback the object records, as {cause, key}: the key (cause and the condition's
// transition time) tells one rollback from the next. nullopt when the object shows none.
struct RollbackSeen {
  std::string cause;
  std::string key;
};
std::optional<RollbackSeen> RollbackInObject(const api::ImageBasedUpgrade& ibu);
// Unix seconds of the newest Failed/AbortFailed/FinalizeFailed condition; 0 when none.
int64_t LastErrorInObject(const api::ImageBasedUpgrade& ibu);

// Counters that must outlive one object state (Idle empties conditions and history) and a
// daemon restart: kept in <state-dir>/metrics.json (0600), rewritten when they change.
struct Counters {
  std::map<std::string, uint64_t> rollbacks;  // by cause
  std::vector<std::string> seen;              // RollbackSeen keys already counted (newest last)
  int64_t last_error = 0;
  bool operator==(const Counters&) const = default;
};

struct MetricsInput {
  api::ImageBasedUpgrade object;
  TimePoint now{};
  ProgressSnapshot progress;
  std::optional<precache::PrecacheStatus> precache;
  Counters counters;
  // The journaled host step running now ("prep.stateroot.import"), "" when none.
  std::string step;
  std::optional<ClusterConnection> cluster;  // Kubernetes mode only
};

// The exposition text: pure, so it is tested line by line.
std::string RenderMetrics(const MetricsInput& in);

// Keeps the counters: Observe() every object version the daemon sees (and before a scrape).
class MetricsRecorder {
 public:
  // state_dir empty: counters in memory only (tests).
  explicit MetricsRecorder(std::filesystem::path state_dir);

  void Observe(const api::ImageBasedUpgrade& ibu);
  Counters Snapshot() const;
  // Observe(object) then RenderMetrics with the live progress, the pre-cache status file and
  // the step the step journal (<state dir>/journal.json) has started and not finished.
  std::string Render(const api::ImageBasedUpgrade& ibu, TimePoint now);
  // Kubernetes mode: where Render gets the connection from. Set before serving.
  void SetClusterSource(std::function<ClusterConnection()> source);

 private:
  void Save() const;

  std::filesystem::path state_dir_;
  mutable std::mutex mu_;
  Counters counters_;
  std::function<ClusterConnection()> cluster_source_;
};

}  // namespace lca::metrics
