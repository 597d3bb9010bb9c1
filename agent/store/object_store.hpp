#pragma once
// The daemon owns the one ImageBasedUpgrade object. It lives in memory, guarded by one mutex,
// and on disk as <state-dir>/ibu.json (0600): the same file, format and path the Go operator
// uses to carry the object across a pivot, so the new stateroot boots with it in place.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "agent/api/ibu.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"

namespace lca {

class ObjectStore {
 public:
  static constexpr const char* kFileName = state_layout::kObject;
  static constexpr const char* kHighWaterFileName = state_layout::kResourceVersion;

  // Loads <state_dir>/ibu.json, or creates the default Idle object (generation 1) when there is
  // none. Creates state_dir 0700. A file that does not parse is an error naming the file: the
  // daemon must not silently replace an in-flight upgrade's record.
  //
  // resourceVersion never goes backwards across a pivot or rollback boot: the object this
  // stateroot finds was handed over (or sealed) before the other stateroot served later
  // versions. `peer_state_dirs` are the state dirs of the host's stateroots (this one may be
  // among them); the highest version their ibu.json and high-water files hold, when above the
  // loaded object's, makes the object load as a new version above it, so a watcher sees a
  // change. Peers are read best-effort: an unreadable one only logs a warning.
  explicit ObjectStore(std::filesystem::path state_dir,
                       const std::vector<std::filesystem::path>& peer_state_dirs = {});

  const std::filesystem::path& path() const { return path_; }

  api::ImageBasedUpgrade Get() const;
  uint64_t ResourceVersion() const;

  struct PatchResult {
    api::ImageBasedUpgrade object;
    std::vector<std::string> warnings;
    bool changed = false;
  };
  // An RFC 7386 merge patch from a client: spec and metadata (labels, annotations, and
  // resourceVersion as a precondition) only. Admission rules apply; a rejected patch changes
  // and persists nothing. Throws lca::Error kInvalid / kConflict / kForbidden.
  PatchResult ApplyMergePatch(const Json& patch);

  // The agent's own writes (status, its annotations). `mutate` edits a copy; nothing is
  // written when it leaves the object equal. Returns the stored object.
  api::ImageBasedUpgrade Update(const std::function<void(api::ImageBasedUpgrade&)>& mutate);

  // Replaces the whole object (restoring a saved copy); resourceVersion continues upward.
  api::ImageBasedUpgrade Replace(api::ImageBasedUpgrade obj);

  // Blocks until the resourceVersion passes `since`, the timeout passes, or Shutdown().
  // Returns the current resourceVersion.
  uint64_t WaitForChange(uint64_t since, std::chrono::milliseconds timeout) const;

  // Called (outside the lock) after a client patch changed the spec or annotations: the
  // reconciler's wake-up. Set once before serving.
  void SetClientChangeHook(std::function<void()> hook);

  // The pivot's last write (reference §5.1 step 10): `next_boot` goes to disk as what this
  // stateroot's agent finds if it ever boots again (the "Uncontrolled rollback" record), while
  // the object served until the reboot stays as it is. Later writes in this process stay in
  // memory (their resourceVersion goes to the high-water file), and client patches are refused:
  // the host is going down and they would be lost. So from here the served object's
  // status.validNextStages is empty, whatever the stage rules say: it lists what a patch may
  // ask for, and none is accepted.
  void SealForNextBoot(const api::ImageBasedUpgrade& next_boot);
  bool Sealed() const;

  void Shutdown();
  bool IsShutdown() const;

 private:
  api::ImageBasedUpgrade CommitLocked(api::ImageBasedUpgrade next);
  void RaiseToPeersLocked(const std::vector<std::filesystem::path>& peer_state_dirs);

  std::filesystem::path path_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  api::ImageBasedUpgrade obj_;
  uint64_t version_ = 0;
  bool shutdown_ = false;
  bool sealed_ = false;
  std::function<void()> client_change_hook_;
};

}  // namespace lca
