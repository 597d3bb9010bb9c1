#pragma once
// One status model, three renderings: the object itself as JSON or YAML, and two human views
// (the `get` table and the `status` page). Pure functions of the object and `now`, so the
// human output is tested against golden files.
#include <optional>
#include <string>

#include "agent/api/ibu.hpp"
#include "agent/metrics/cluster.hpp"

namespace lca {

// `lcactl get ibu`: NAME AGE DESIRED STAGE STATE DETAILS, as the CRD's printer columns
// (STATE/DETAILS = reason/message of the last condition). Wide adds VALID NEXT STAGES.
std::string RenderTable(const api::ImageBasedUpgrade& ibu, TimePoint now, bool wide,
                        bool no_headers);

// `lcactl status`: stage, state, seed, conditions, valid next stages, history; in Kubernetes
// mode (`cluster` from the daemon's metrics) a "Cluster:" line about the API server.
std::string RenderHuman(const api::ImageBasedUpgrade& ibu, TimePoint now,
                        const std::optional<metrics::ClusterConnection>& cluster = std::nullopt);

// "connected to https://...:6443, last sync 5s ago" / "not connected to ...: Unauthorized
// 1m ago (3 errors), last sync 10m ago".
std::string ClusterLine(const metrics::ClusterConnection& c, TimePoint now);

// Lays rows out in columns separated by three spaces, as kubectl does.
std::string FormatColumns(const std::vector<std::vector<std::string>>& rows,
                          const std::string& indent = "");

}  // namespace lca
