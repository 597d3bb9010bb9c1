#include "agent/kube/watch_cursor.hpp"

#include <algorithm>

#include "agent/kube/client.hpp"

namespace lca::kube {

WatchStep WatchCursor::OnEvent(const Json& event) {
  WatchStep step;
  if (!event.is_object() || !event.contains("type") || !event["type"].is_string() ||
      !event.contains("object") || !event["object"].is_object()) {
    step.kind = WatchStep::kError;
    step.message = "malformed watch event (no type or object)";
    return step;
  }
  const std::string type = event["type"];
  const Json& obj = event["object"];
  if (type == "ERROR") {
    const int code = obj.value("code", 0);
    if (code == 410 || obj.value("reason", "") == "Expired" || obj.value("reason", "") == "Gone") {
      rv_.clear();
      step.kind = WatchStep::kRelist;
    } else {
      step.kind = WatchStep::kError;
    }
    step.message = "watch ERROR " + std::to_string(code) + " " + obj.value("reason", "") + ": " +
                   obj.value("message", "");
    return step;
  }
  const Json md = obj.value("metadata", Json::object());
  const std::string rv = md.is_object() ? md.value("resourceVersion", "") : "";
  if (type != "BOOKMARK" && type != "ADDED" && type != "MODIFIED" && type != "DELETED") {
    step.kind = WatchStep::kError;
    step.message = "unknown watch event type '" + type + "'";
    return step;
  }
  if (!rv.empty()) rv_ = rv;
  if (type == "BOOKMARK" || md.value("name", "") != name_) return step;
  step.kind = type == "DELETED" ? WatchStep::kDeleted : WatchStep::kObject;
  step.object = obj;
  return step;
}

std::string WatchCursor::ListQuery() const {
  return "?fieldSelector=" + UrlEscape("metadata.name=" + name_);
}

std::string WatchCursor::WatchQuery(int timeout_seconds) const {
  return ListQuery() + "&watch=true&allowWatchBookmarks=true&resourceVersion=" + UrlEscape(rv_) +
         "&timeoutSeconds=" + std::to_string(timeout_seconds);
}

std::chrono::milliseconds Backoff::Next() {
  const auto d = next_;
  next_ = std::min(max_, next_ * 2);
  std::uniform_int_distribution<int64_t> pick(d.count() / 2, d.count());
  return std::chrono::milliseconds(pick(rng_));
}

}  // namespace lca::kube
