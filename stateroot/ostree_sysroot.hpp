#pragma once
// The libostree adapter: the only code that talks to libostree (and the only file including
// <ostree.h>, in the .cpp). Everything here works on a sysroot path given by the caller, so the
// same code runs on a host ("/" or "/sysroot") and on a throwaway sysroot in a temp dir.
//
// "Booted" is always the caller's input (resolved from the kernel command line by
// boot_cmdline.hpp), never libostree's own detection: tests and CI are not booted into ostree,
// and the pure functions at the bottom must give the same answer in both worlds.
//
// Not thread-safe: one OstreeSysroot per thread (libostree's sysroot object has no locking).
// Mutations take the sysroot lock themselves unless this object already holds it (TryLock), so
// a caller can hold one lock across a whole stage (import + deploy) and still call them.
//
// Every failure is an lca::Error whose message names the operation and the path or stateroot,
// then libostree's own message.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stateroot/boot_cmdline.hpp"

namespace lca::stateroot {

struct Deployment {
  int index = 0;               // position in the boot order (0 = default next boot)
  std::string stateroot;       // osname
  std::string checksum;        // commit checksum
  int serial = 0;              // deploy serial (several deployments of one commit)
  bool pinned = false;         // [libostree-transient] pinned=true in the origin
  std::string kargs;           // the BLS options line minus ostree= (space separated)
  std::string origin_refspec;  // the origin's [origin] refspec, may be empty
  std::string version;         // commit metadata "version", may be empty
  std::filesystem::path dir;   // <sysroot>/ostree/deploy/<stateroot>/deploy/<checksum>.<serial>
  std::string bootcsum;        // kernel+initramfs checksum: the ostree= path's 4th part
  int bootserial = 0;          // the ostree= path's last part
};

// Same stateroot, checksum and serial: how a Deployment is found again after a reload, since
// its index changes with every write.
bool SameDeployment(const Deployment& d, const BootedDeployment& booted);
bool SameDeployment(const Deployment& a, const Deployment& b);

class OstreeSysroot {
  struct Impl;  // declared first: Lock points at it

 public:
  // Opens and loads the sysroot (ostree_sysroot_new + load). Throws if it is not one.
  explicit OstreeSysroot(std::filesystem::path sysroot);
  ~OstreeSysroot();
  OstreeSysroot(OstreeSysroot&&) noexcept;
  OstreeSysroot& operator=(OstreeSysroot&&) noexcept;
  OstreeSysroot(const OstreeSysroot&) = delete;
  OstreeSysroot& operator=(const OstreeSysroot&) = delete;

  const std::filesystem::path& path() const;
  std::filesystem::path repo_path() const;  // <sysroot>/ostree/repo

  // The exclusive sysroot lock (an open-file-description lock on <sysroot>/ostree/lock, the one
  // rpm-ostree and `ostree admin` take; flock(1) does not see it), held until destroyed. Two
  // OstreeSysroot objects in one process exclude each other too. Must not outlive the
  // OstreeSysroot it came from.
  class Lock {
   public:
    Lock(Lock&& other) noexcept;
    Lock& operator=(Lock&& other) noexcept;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock();

   private:
    friend class OstreeSysroot;
    explicit Lock(Impl* impl) : impl_(impl) {}
    void Release() noexcept;
    Impl* impl_ = nullptr;
  };
  // Never waits: Errc::kConflict "ostree sysroot <path> is locked by another process (rpm-ostree
  // or ostree admin?)" when someone else holds it.
  Lock TryLock();

  // The deployments in boot order, after reloading from disk.
  std::vector<Deployment> Deployments();
  // The deployment `booted` names (stateroot + checksum + serial), if it is in the list.
  std::optional<Deployment> Booted(const BootedDeployment& booted);

  // `ostree admin os-init`: creates ostree/deploy/<name>/{deploy,var}. Errc::kConflict if it
  // already exists (libostree 2022.7 refuses too): whether to reuse or remove a leftover
  // stateroot is the caller's decision (StaterootExists, RemoveStateroot).
  void InitStateroot(const std::string& name);
  // <sysroot>/ostree/deploy/<name> is a directory (with or without deployments). Errc::kInvalid
  // for a name that cannot be a stateroot (empty, ".", "..", '/', whitespace).
  bool StaterootExists(const std::string& name) const;

  // Imports every complete commit of `source_repo` (so every ref target) into the sysroot repo,
  // the way `ostree pull-local` does: a local pull, which hardlinks objects instead of copying
  // them when both repos are on one filesystem and have the same mode (bare seed repo -> bare
  // sysroot repo). With kMoveFromScratch and the same mode and filesystem, the loose objects
  // are moved with rename(2) instead (commits last; objects the sysroot repo has stay behind),
  // which skips the pull's per-object bookkeeping and leaves little to delete. Returns the
  // imported checksums, sorted.
  // Refs are deliberately not copied: a seed repo's refs are its own deployment refs
  // (ostree/N/N/N) and its container image refs, which would keep the objects alive forever
  // after the stateroot is removed. Only deployments keep a commit, so hold one Lock from
  // import to Deploy, or a Prune in between discards the import.
  enum class ImportMode {
    kPull,  // source_repo stays as it is
    // source_repo is a scratch repo to be thrown away: same mode and filesystem -> move objects
    kMoveFromScratch,
  };
  std::vector<std::string> ImportFromRepo(const std::filesystem::path& source_repo,
                                          ImportMode mode = ImportMode::kPull);

  // The sysroot repo has the commit object `checksum` (not that every object under it is there).
  bool HasCommit(const std::string& checksum);
  // The commit's "version" metadata, "" if it has none. Errc::kNotFound if the commit is absent.
  std::string CommitVersion(const std::string& checksum);

  // Deploys `checksum` into the existing `stateroot` with exactly `kargs` (nothing inherited)
  // and `origin` (keyfile text; empty means a minimal origin with the checksum as refspec;
  // [libostree-transient] state such as a seed's pin is dropped). The new deployment is not
  // the default: it goes right after the current default (index 1), or is the only one. No
  // other deployment is pruned or cleaned up (`ostree admin deploy --no-prune`), and /etc is
  // not merged from any other deployment: it starts as the commit's /usr/etc.
  Deployment Deploy(const std::string& stateroot, const std::string& checksum,
                    const std::vector<std::string>& kargs, const std::string& origin);
  // Moves `d` to index 0 and rewrites the boot entries (what `ostree admin set-default` does on
  // newer ostree; 2022.7 has no such command). No-op if it is already index 0.
  void SetDefault(const Deployment& d);
  // Writes or removes [libostree-transient] pinned=true in `d`'s origin.
  void SetPinned(const Deployment& d, bool pinned);
  // Removes the one deployment `d` from the boot entries (`ostree admin undeploy`), then its
  // deployment directory and boot files if nothing else references them; the repo is not
  // pruned. Refuses with Errc::kConflict and changes nothing when `d` is `booted`. A deployment
  // that is already gone is nothing to do.
  void Undeploy(const Deployment& d, const std::optional<BootedDeployment>& booted);
  // Undeploys every deployment of `stateroot` and removes <sysroot>/ostree/deploy/<stateroot>
  // (a stateroot without deployments, e.g. half-created, is just removed; one that does not
  // exist is nothing to do). Refuses with Errc::kConflict and changes nothing when one of its
  // deployments is `booted` ("deployment N in stateroot S is booted") or the stateroot is
  // `booted`'s by name. Also removes boot directories and deployment directories no longer
  // referenced, but does not prune the repo (Prune does).
  void RemoveStateroot(const std::string& stateroot, const std::optional<BootedDeployment>& booted);
  // What ostree_sysroot_cleanup does (minus its "Freed objects" line on stdout): removes
  // unreferenced deployment and boot directories and prunes repo objects that no ref and no
  // deployment reaches.
  void Prune();

 private:
  // A Lock for the duration of one mutation, unless the caller already holds one.
  std::optional<Lock> LockUnlessHeld();

  std::unique_ptr<Impl> impl_;
};

// A loose commit object `checksum` in the repo at `repo`, looked up without opening the repo: a
// scratch repo an interrupted import may have half emptied.
bool HasLooseCommit(const std::filesystem::path& repo, const std::string& checksum);

// The booted deployment for a kernel command line. The `ostree=` path names
// /ostree/boot.N/<stateroot>/<bootcsum>/<bootserial>; it is resolved through its symlinks first
// (ResolveBooted), and when that path is gone (a cleanup after a deployment write removes the
// other boot.N: routine on a running host) the deployment is found by stateroot, boot checksum
// and, when that stateroot has several deployments of that kernel, boot serial (which shifts when
// another stateroot's deployment of the same kernel goes first). nullopt without `ostree=`.
std::optional<BootedDeployment> FindBooted(const std::filesystem::path& sysroot,
                                           std::string_view cmdline);

// Pure functions of the deployment list and the booted deployment (bootc's
// get_status(sysroot, booted)).

// The deployment a rollback boots: the first deployment of a stateroot other than `booted`'s.
std::optional<Deployment> RollbackTarget(const std::vector<Deployment>& deps,
                                         const BootedDeployment& booted);

// The stateroots a cleanup removes: every stateroot with a deployment, in boot order, then every
// directory under ostree/deploy without one (half-created), sorted; never `booted_stateroot`.
// Errc::kInvalid if `booted_stateroot` is empty: without knowing what is booted, everything
// would qualify.
std::vector<std::string> StaterootsToRemove(const std::vector<Deployment>& deps,
                                            const std::vector<std::string>& stateroot_dirs,
                                            const std::string& booted_stateroot);

}  // namespace lca::stateroot
