#include "agent/status/render.hpp"

#include <algorithm>
#include <sstream>

#include "agent/api/conditions.hpp"
#include "agent/api/stage_rules.hpp"

namespace lca {
namespace {

const api::Condition* LastCondition(const api::ImageBasedUpgrade& ibu) {
  if (!ibu.status || ibu.status->conditions.empty()) return nullptr;
  return &ibu.status->conditions.back();
}

std::string Age(TimePoint then, TimePoint now) { return FormatAge(now - then); }

std::string StageList(const std::vector<api::Stage>& stages) {
  std::string out;
  for (api::Stage s : stages) out += (out.empty() ? "" : ", ") + std::string(api::StageName(s));
  return out.empty() ? "<none>" : out;
}

// A stage's history gets a completion time only on success, so an open entry is either still
// running or ended without success.
std::string Span(const std::optional<TimePoint>& start, const std::optional<TimePoint>& end,
                 TimePoint now, bool running) {
  if (!start) return "-";
  if (end) return FormatDuration(*end - *start);
  return running ? FormatDuration(now - *start) + " (running)" : "- (did not complete)";
}

std::string TimeOrDash(const std::optional<TimePoint>& t) { return t ? FormatTime(*t) : "-"; }

}  // namespace

std::string FormatColumns(const std::vector<std::vector<std::string>>& rows,
                          const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream os;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    os << line << "\n";
  }
  return os.str();
}

std::string RenderTable(const api::ImageBasedUpgrade& ibu, TimePoint now, bool wide,
                        bool no_headers) {
  std::vector<std::vector<std::string>> rows;
  if (!no_headers) {
    rows.push_back({"NAME", "AGE", "DESIRED STAGE", "STATE", "DETAILS"});
    if (wide) rows.back().push_back("VALID NEXT STAGES");
  }
  const api::Condition* last = LastCondition(ibu);
  rows.push_back({ibu.metadata.name, Age(ibu.metadata.creation_timestamp, now),
                  std::string(api::StageName(ibu.spec.stage)), last ? last->reason : "",
                  last ? last->message : ""});
  if (wide) rows.back().push_back(ibu.status ? StageList(ibu.status->valid_next_stages) : "<none>");
  return FormatColumns(rows);
}

std::string ClusterLine(const metrics::ClusterConnection& c, TimePoint now) {
  auto ago = [&](int64_t unix) {
    return FormatAge(now - TimePoint(std::chrono::seconds(unix))) + " ago";
  };
  std::string line = (c.connected ? "connected to " : "not connected to ") + c.server;
  if (!c.connected && !c.last_error_reason.empty()) {
    uint64_t errors = 0;
    for (const auto& [reason, n] : c.errors) errors += n;
    line += ": " + c.last_error_reason + " " + ago(c.last_error) + " (" + std::to_string(errors) +
            (errors == 1 ? " error)" : " errors)");
  }
  return line + ", last sync " + (c.last_sync > 0 ? ago(c.last_sync) : "never");
}

std::string RenderHuman(const api::ImageBasedUpgrade& ibu, TimePoint now,
                        const std::optional<metrics::ClusterConnection>& cluster) {
  std::ostringstream os;
  const api::Condition* last = LastCondition(ibu);
  const auto& seed = ibu.spec.seed_image_ref;
  std::vector<std::vector<std::string>> head;
  std::string identity =
      ibu.metadata.name + " (generation " + std::to_string(ibu.metadata.generation);
  if (!ibu.metadata.resource_version.empty()) {
    identity += ", resourceVersion " + ibu.metadata.resource_version;
  }
  head.push_back({"ImageBasedUpgrade:", identity + ")"});
  head.push_back({"Desired stage:", std::string(api::StageName(ibu.spec.stage))});
  head.push_back({"State:", last ? last->reason + ": " + last->message : "<not reconciled yet>"});
  if (!seed.image.empty() || !seed.version.empty()) {
    std::string s = seed.image.empty() ? "<no image>" : seed.image;
    s += " (version " + (seed.version.empty() ? std::string("<unset>") : seed.version);
    if (seed.pull_secret_ref) s += ", pull secret " + seed.pull_secret_ref->name;
    s += ")";
    head.push_back({"Seed image:", s});
  }
  {
    const bool set =
        ibu.spec.auto_rollback_on_failure &&
        ibu.spec.auto_rollback_on_failure->init_monitor_timeout_seconds.value_or(0) > 0;
    head.push_back({"Auto-rollback:", "init monitor timeout " +
                                          FormatDuration(std::chrono::seconds(
                                              api::InitMonitorTimeoutSeconds(ibu.spec))) +
                                          (set ? "" : " (default)")});
  }
  head.push_back(
      {"Valid next stages:", ibu.status ? StageList(ibu.status->valid_next_stages) : "<none>"});
  if (ibu.status && ibu.status->rollback_availability_expiration) {
    head.push_back(
        {"Rollback available until:", FormatTime(*ibu.status->rollback_availability_expiration)});
  }
  if (cluster) head.push_back({"Cluster:", ClusterLine(*cluster, now)});
  os << FormatColumns(head);

  if (ibu.status && !ibu.status->conditions.empty()) {
    os << "\nConditions:\n";
    std::vector<std::vector<std::string>> rows{{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"}};
    for (const auto& c : ibu.status->conditions) {
      rows.push_back({c.type, c.status, c.reason, Age(c.last_transition_time, now), c.message});
    }
    os << FormatColumns(rows, "  ");
  }
  if (ibu.status && !ibu.status->history.empty()) {
    os << "\nHistory:\n";
    std::vector<std::vector<std::string>> rows{{"STAGE/PHASE", "STARTED", "COMPLETED", "DURATION"}};
    for (const auto& h : ibu.status->history) {
      const bool running = api::IsStageInProgress(*ibu.status, h.stage);
      rows.push_back({std::string(api::StageName(h.stage)), TimeOrDash(h.start_time),
                      TimeOrDash(h.completion_time),
                      Span(h.start_time, h.completion_time, now, running)});
      for (const auto& p : h.phases) {
        rows.push_back({"  " + p.phase, TimeOrDash(p.start_time), TimeOrDash(p.completion_time),
                        Span(p.start_time, p.completion_time, now, running)});
      }
    }
    os << FormatColumns(rows, "  ");
  }
  if (!ibu.metadata.annotations.empty()) {
    os << "\nAnnotations:\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, v] : ibu.metadata.annotations) rows.push_back({k + ":", v});
    os << FormatColumns(rows, "  ");
  }
  return os.str();
}

}  // namespace lca
