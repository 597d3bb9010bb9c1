#include "agent/store/object_store.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "agent/api/admission.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"

namespace lca {
namespace {

std::string NewUid() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string uid = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : uid) {
    if (c == 'x') c = "0123456789abcdef"[hex(rd)];
    if (c == 'y') c = "89ab"[hex(rd) & 3];
  }
  return uid;
}

// Temp files a crash left between write and rename: harmless, but not to be kept.
void RemoveStaleTemps(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(std::string(".") + ObjectStore::kFileName + ".tmp.", 0) == 0) {
      spdlog::info("removing {} left by an interrupted write", e.path().string());
      std::filesystem::remove(e.path(), ec);
    }
  }
}

uint64_t ParseVersion(const std::string& rv) {
  try {
    return rv.empty() ? 0 : std::stoull(rv);
  } catch (const std::exception&) {
    return 0;
  }
}

// The highest resourceVersion one state dir records: its ibu.json and its high-water file.
// Best-effort: this only decides where the count continues.
uint64_t RecordedVersion(const std::filesystem::path& dir) {
  uint64_t high = 0;
  try {
    if (auto data = ReadFileIfExists(dir / ObjectStore::kFileName)) {
      const Json j = ParseJson(*data, (dir / ObjectStore::kFileName).string());
      const Json rv = j.value("metadata", Json::object()).value("resourceVersion", Json(""));
      if (rv.is_string()) high = ParseVersion(rv.get<std::string>());
    }
    if (auto data = ReadFileIfExists(dir / ObjectStore::kHighWaterFileName)) {
      high = std::max(high, ParseVersion(*data));
    }
  } catch (const std::exception& e) {
    spdlog::warn("ignoring {} for the resourceVersion count: {}", dir.string(), e.what());
  }
  return high;
}

// An object without status has no list to empty.
void ClearValidNextStages(api::ImageBasedUpgrade& obj) {
  if (obj.status) obj.status->valid_next_stages.clear();
}

}  // namespace

ObjectStore::ObjectStore(std::filesystem::path state_dir,
                         const std::vector<std::filesystem::path>& peer_state_dirs)
    : path_(state_dir / kFileName) {
  EnsureDir(state_dir, 0700);
  RemoveStaleTemps(state_dir);
  auto data = ReadFileIfExists(path_);
  std::lock_guard lock(mu_);
  if (!data) {
    RaiseToPeersLocked(peer_state_dirs);
    CommitLocked(api::NewDefault(Now(), NewUid()));
    spdlog::info("created ImageBasedUpgrade '{}' in {}", api::kName, path_.string());
    return;
  }
  obj_ = WithContext("loading " + path_.string(), [&] {
    auto obj = api::FromJson(ParseJson(*data, "object"));
    api::ValidateObject(obj);
    return obj;
  });
  version_ = ParseVersion(obj_.metadata.resource_version);
  if (obj_.metadata.uid.empty()) obj_.metadata.uid = NewUid();
  const uint64_t loaded = version_;
  RaiseToPeersLocked(peer_state_dirs);
  if (version_ > loaded) {
    spdlog::info(
        "{} holds resourceVersion {} but {} was served before this boot; continuing "
        "above it",
        path_.string(), loaded, version_);
    CommitLocked(obj_);
  }
}

void ObjectStore::RaiseToPeersLocked(const std::vector<std::filesystem::path>& peer_state_dirs) {
  version_ = std::max(version_, RecordedVersion(path_.parent_path()));
  for (const auto& dir : peer_state_dirs) version_ = std::max(version_, RecordedVersion(dir));
}

api::ImageBasedUpgrade ObjectStore::Get() const {
  std::lock_guard lock(mu_);
  return obj_;
}

uint64_t ObjectStore::ResourceVersion() const {
  std::lock_guard lock(mu_);
  return version_;
}

api::ImageBasedUpgrade ObjectStore::CommitLocked(api::ImageBasedUpgrade next) {
  next.metadata.resource_version = std::to_string(version_ + 1);
  LCA_FAILPOINT("store.persist");
  // Disk first: if the write fails, memory still matches what a restart would load. Sealed,
  // ibu.json keeps the next boot's record and only the count is kept.
  if (sealed_) {
    ClearValidNextStages(next);
    WriteFileAtomic(path_.parent_path() / kHighWaterFileName, next.metadata.resource_version, 0600);
  } else {
    WriteFileAtomic(path_, ToPrettyJson(api::ToJson(next)), 0600);
  }
  ++version_;
  obj_ = std::move(next);
  cv_.notify_all();
  return obj_;
}

ObjectStore::PatchResult ObjectStore::ApplyMergePatch(const Json& patch) {
  if (!patch.is_object()) {
    throw Error(Errc::kInvalid, "patch: a merge patch must be a JSON object");
  }
  if (patch.contains("status")) {
    throw Error(Errc::kForbidden,
                "status: is written by lifecycle-agent only; patch spec or metadata");
  }
  for (const auto& [key, v] : patch.items()) {
    if (key != "spec" && key != "metadata" && key != "apiVersion" && key != "kind") {
      throw Error(Errc::kInvalid, key + ": unknown field (patch spec or metadata)");
    }
  }
  std::optional<std::string> precondition;
  if (patch.contains("metadata")) {
    const Json& md = patch["metadata"];
    if (!md.is_object()) throw Error(Errc::kInvalid, "metadata: must be an object");
    for (const auto& [key, v] : md.items()) {
      if (key == "resourceVersion") {
        if (!v.is_string())
          throw Error(Errc::kInvalid, "metadata.resourceVersion: must be a string");
        precondition = v.get<std::string>();
      } else if (key != "labels" && key != "annotations" && key != "name") {
        throw Error(Errc::kInvalid, "metadata." + key + ": is managed by lifecycle-agent");
      }
    }
  }

  PatchResult result;
  std::function<void()> hook;
  {
    std::lock_guard lock(mu_);
    if (sealed_) {
      throw Error(Errc::kConflict,
                  "the host is rebooting for the pivot; the object cannot change until it is "
                  "back up");
    }
    if (precondition && *precondition != obj_.metadata.resource_version) {
      throw Error(
          Errc::kConflict,
          "Operation cannot be fulfilled on imagebasedupgrades.lca.openshift.io \"upgrade\": "
          "the object has been modified; please apply your changes to the latest version "
          "and try again");
    }
    Json merged = api::ToJson(obj_);
    Json p = patch;
    if (p.contains("metadata")) p["metadata"].erase("resourceVersion");
    merged.merge_patch(p);
    api::ImageBasedUpgrade next = api::FromJson(merged);
    api::ValidateObject(next);
    api::AdmitUpdate(obj_, next);
    result.warnings = api::StageWarnings(obj_, next);
    const bool spec_changed = !(next.spec == obj_.spec);
    const bool meta_changed = !(next.metadata == obj_.metadata);
    if (spec_changed) next.metadata.generation = obj_.metadata.generation + 1;
    if (spec_changed || meta_changed) {
      result.object = CommitLocked(std::move(next));
      result.changed = true;
      hook = client_change_hook_;
    } else {
      result.object = obj_;
    }
  }
  if (hook) hook();
  return result;
}

api::ImageBasedUpgrade ObjectStore::Update(
    const std::function<void(api::ImageBasedUpgrade&)>& mutate) {
  std::lock_guard lock(mu_);
  api::ImageBasedUpgrade next = obj_;
  mutate(next);
  if (next == obj_) return obj_;
  return CommitLocked(std::move(next));
}

api::ImageBasedUpgrade ObjectStore::Replace(api::ImageBasedUpgrade obj) {
  std::lock_guard lock(mu_);
  version_ = std::max(version_, ParseVersion(obj.metadata.resource_version));
  return CommitLocked(std::move(obj));
}

uint64_t ObjectStore::WaitForChange(uint64_t since, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return version_ > since || shutdown_; });
  return version_;
}

void ObjectStore::SealForNextBoot(const api::ImageBasedUpgrade& next_boot) {
  std::lock_guard lock(mu_);
  api::ImageBasedUpgrade disk = next_boot;
  disk.metadata.resource_version = std::to_string(version_ + 1);
  WriteFileAtomic(path_, ToPrettyJson(api::ToJson(disk)), 0600);
  ++version_;
  sealed_ = true;
  // The served object changes too (no valid next stage), as a version above the record's.
  CommitLocked(obj_);
  spdlog::info(
      "{} now holds the record for this stateroot's next boot; further changes stay "
      "in memory",
      path_.string());
}

bool ObjectStore::Sealed() const {
  std::lock_guard lock(mu_);
  return sealed_;
}

void ObjectStore::SetClientChangeHook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  client_change_hook_ = std::move(hook);
}

void ObjectStore::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

bool ObjectStore::IsShutdown() const {
  std::lock_guard lock(mu_);
  return shutdown_;
}

}  // namespace lca
