#pragma once
// The pre-cache progress file `workspace/precache_status.json` (reference-lca §4.4): written by
// the puller after every image, read by the controller for the in-progress message.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_yaml.hpp"

namespace lca::precache {

inline constexpr std::string_view kStatusFileName = "precache_status.json";
inline constexpr mode_t kStatusFileMode = 0600;

struct PrecacheStatus {
  uint64_t total = 0;
  uint64_t pulled = 0;
  uint64_t failed = 0;
  std::vector<std::string> failed_pulls;  // refs, in the order they failed

  bool operator==(const PrecacheStatus&) const = default;
};

// {"total":N,"pulled":P,"failed":F,"failed_pulls":[...]} in that key order, with failed_pulls
// null when nothing failed: the reference's Go struct marshals a nil slice so, and readers of
// the old file may rely on it.
Json StatusToJson(const PrecacheStatus& s);
// Compact JSON of StatusToJson, no trailing newline: the exact bytes of the file.
std::string StatusToText(const PrecacheStatus& s);
// Accepts failed_pulls as an array of strings, null or absent. Counts must be non-negative
// integers. Throws kInvalid "<what>: <field> ..." otherwise.
PrecacheStatus StatusFromJson(const Json& j, std::string_view what);

// "total: N (pulled: P, failed: F)", the Prep in-progress message.
std::string ProgressMessage(const PrecacheStatus& s);

// Atomic replace with mode 0600 (a reader never sees half a file).
void WriteStatusFile(const std::filesystem::path& path, const PrecacheStatus& s);
// nullopt when the file does not exist (the puller has not started); kInvalid when it is not a
// status file.
std::optional<PrecacheStatus> ReadStatusFile(const std::filesystem::path& path);

// Counters shared by the pull workers: each finished image updates the counts under a mutex and
// rewrites the file, so the file always matches what has finished.
class ProgressRecorder {
 public:
  // Writes the initial file (all zero but total) at once.
  ProgressRecorder(std::filesystem::path path, uint64_t total);

  void RecordPulled();
  void RecordFailed(const std::string& image);
  // Rewrites the file with the current counts (the final write after all pulls).
  void Flush();
  PrecacheStatus Snapshot() const;

 private:
  void WriteLocked() const;

  std::filesystem::path path_;
  mutable std::mutex mu_;
  PrecacheStatus status_;
};

}  // namespace lca::precache
