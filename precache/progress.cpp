#include "precache/progress.hpp"

#include <utility>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::precache {
namespace {

Error Invalid(std::string_view what, const std::string& msg) {
  return Error(Errc::kInvalid, std::string(what) + ": " + msg);
}

uint64_t Count(const Json& j, const char* key, std::string_view what) {
  if (!j.contains(key)) throw Invalid(what, std::string(key) + " is missing");
  const Json& v = j[key];
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    throw Invalid(what, std::string(key) + " must be a non-negative integer");
  }
  return v.get<uint64_t>();
}

}  // namespace

Json StatusToJson(const PrecacheStatus& s) {
  Json j = Json::object();
  j["total"] = s.total;
  j["pulled"] = s.pulled;
  j["failed"] = s.failed;
  j["failed_pulls"] = s.failed_pulls.empty() ? Json(nullptr) : Json(s.failed_pulls);
  return j;
}

std::string StatusToText(const PrecacheStatus& s) { return StatusToJson(s).dump(); }

PrecacheStatus StatusFromJson(const Json& j, std::string_view what) {
  if (!j.is_object()) throw Invalid(what, "must be a JSON object");
  PrecacheStatus s;
  s.total = Count(j, "total", what);
  s.pulled = Count(j, "pulled", what);
  s.failed = Count(j, "failed", what);
  if (j.contains("failed_pulls") && !j["failed_pulls"].is_null()) {
    const Json& list = j["failed_pulls"];
    if (!list.is_array()) throw Invalid(what, "failed_pulls must be an array of strings or null");
    for (const auto& item : list) {
      if (!item.is_string()) throw Invalid(what, "failed_pulls must hold only strings");
      s.failed_pulls.push_back(item.get<std::string>());
    }
  }
  return s;
}

std::string ProgressMessage(const PrecacheStatus& s) {
  return "total: " + std::to_string(s.total) + " (pulled: " + std::to_string(s.pulled) +
         ", failed: " + std::to_string(s.failed) + ")";
}

void WriteStatusFile(const std::filesystem::path& path, const PrecacheStatus& s) {
  WriteFileAtomic(path, StatusToText(s), kStatusFileMode);
}

std::optional<PrecacheStatus> ReadStatusFile(const std::filesystem::path& path) {
  const auto text = ReadFileIfExists(path);
  if (!text) return std::nullopt;
  return StatusFromJson(ParseJson(*text, path.string()), path.string());
}

ProgressRecorder::ProgressRecorder(std::filesystem::path path, uint64_t total)
    : path_(std::move(path)) {
  status_.total = total;
  WriteLocked();
}

void ProgressRecorder::RecordPulled() {
  std::lock_guard lock(mu_);
  ++status_.pulled;
  WriteLocked();
}

void ProgressRecorder::RecordFailed(const std::string& image) {
  std::lock_guard lock(mu_);
  ++status_.failed;
  status_.failed_pulls.push_back(image);
  WriteLocked();
}

void ProgressRecorder::Flush() {
  std::lock_guard lock(mu_);
  WriteLocked();
}

PrecacheStatus ProgressRecorder::Snapshot() const {
  std::lock_guard lock(mu_);
  return status_;
}

void ProgressRecorder::WriteLocked() const { WriteStatusFile(path_, status_); }

}  // namespace lca::precache
