#pragma once
// Filesystem operations on a path that input controls (a seed's etc.deletions, its /etc and
// /var trees, an ostree repo it ships, manifests exported into its stateroot), confined to a
// root directory: the path is resolved beneath the root's fd and no symlink is followed in any
// component, the last one included. A symlink on the way, ".." or an absolute path is refused
// with Errc::kInvalid naming the path and the component, so nothing outside the root is ever
// read, written or removed, whatever links the input planted.
//
// Resolution uses openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it
// (5.6+), else a walk that opens one component at a time with O_NOFOLLOW from the parent's fd.
// Both give the same results; the walk also names the offending component for messages.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.hpp"

namespace lca::beneath {

enum class Resolver { kAuto, kOpenat2, kWalk };

// Process-wide choice, for tests of both paths: kAuto (openat2 where available), kOpenat2 (fails
// with ENOSYS where the kernel lacks it), kWalk.
void SetResolver(Resolver r);
bool Openat2Available();

// Opens a trusted directory (one the caller made or configured, not input) to act as a root.
UniqueFd OpenRoot(const std::filesystem::path& dir);

// `rel` ("a/b/c": no leading "/", no "..", empty and "." components ignored) opened beneath the
// directory `root` with `flags` (O_CLOEXEC and O_NOFOLLOW are added). `mode` with O_CREAT.
// Failures other than a refusal throw lca::Error from errno; ENOENT is kNotFound.
UniqueFd Open(int root, std::string_view rel, int flags, mode_t mode = 0);
// The directory `rel` (O_RDONLY | O_DIRECTORY); nullopt if it does not exist.
std::optional<UniqueFd> OpenDirIfExists(int root, std::string_view rel);

// The parent directory of `rel` opened beneath `root`, and the last component. `rel` must name
// something below the root (at least one component).
struct Parent {
  UniqueFd dir;
  std::string name;
};
Parent OpenParent(int root, std::string_view rel);

// mkdir -p beneath `root`; missing directories are made 0755, the last one `mode`, and the last
// one is then chmod'ed to `mode` (a pre-existing one is tightened too). Returns its fd.
UniqueFd MakeDirs(int root, std::string_view rel, mode_t mode);

// Removes `rel` beneath `root`: a file or symlink is unlinked (a symlink itself, never what it
// points to), a directory is emptied through fds, never following a symlink inside it, then
// removed. False when it does not exist.
bool Remove(int root, std::string_view rel);
// The same for the entry `name` of the directory `dir` (one component).
bool RemoveAt(int dir, const std::string& name);
// Removes the last component of a trusted path (its parent is trusted, the tree under it is
// not): what std::filesystem::remove_all does, through fds. False when it does not exist.
bool RemoveTree(const std::filesystem::path& path);

// rename(2) of `src_rel` beneath `src_root` to `dst_rel` beneath `dst_root` (renameat2 flags,
// e.g. RENAME_NOREPLACE). Neither parent is reached through a symlink; the entries themselves
// are moved, not followed.
void Rename(int src_root, std::string_view src_rel, int dst_root, std::string_view dst_rel,
            unsigned flags = 0);

// Crash-safe replacement of `name` in the directory `dir` (see WriteFileAtomic): temp file,
// fsync, renameat, fsync of the directory. `name` is one component.
void WriteFileAtomicAt(int dir, const std::string& name, std::string_view data, mode_t mode);

// The entries of a directory fd (not "." and ".."), unsorted.
std::vector<std::string> ListDir(int dir);

// The lexical check every operation makes first: the components of `rel`, or kInvalid for an
// absolute path or a ".." component.
std::vector<std::string> Components(std::string_view rel);

}  // namespace lca::beneath
