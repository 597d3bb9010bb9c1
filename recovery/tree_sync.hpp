#pragma once
// Copying a directory tree so the destination equals the source in everything `cp -a` and
// `rsync -aAXH --delete` keep: content, type, mode (setuid included), numeric owner, extended
// attributes (ACLs and SELinux labels are xattrs), symlink targets, hardlinks among the files of
// the tree, device numbers and mtimes. One function serves the backup (into an empty staging
// directory) and the restore (over a live tree: only what differs is rewritten, entries the
// source does not have are deleted, excluded paths are left alone on both sides).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lca::recovery {

// Paths relative to a tree root that a copy and a comparison leave out, from an rsync-style
// exclude list (etc.exclude.list). Each pattern is an fnmatch(3) glob matched with FNM_PATHNAME
// against the whole relative path, anchored at the root (rsync would also match a pattern
// without '/' at any depth: the list's entries are /etc paths, so anchoring is what they mean).
// An excluded directory excludes everything below it. A leading "/" or "./" and a trailing "/"
// are ignored; blank lines and '#' comments are skipped.
class PathFilter {
 public:
  PathFilter() = default;
  explicit PathFilter(const std::vector<std::string>& patterns);
  // One pattern per line.
  static PathFilter FromList(std::string_view text);

  bool Excluded(std::string_view relative_path) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

struct SyncOptions {
  const PathFilter* exclude = nullptr;  // nullptr: nothing excluded
  // Delete destination entries the source does not have (never excluded ones).
  bool delete_extraneous = true;
};

struct SyncStats {
  std::uint64_t written = 0;    // entries created or replaced
  std::uint64_t unchanged = 0;  // entries whose content was already right (metadata re-applied)
  std::uint64_t removed = 0;    // extraneous destination entries deleted (a subtree counts once)
  std::uint64_t bytes = 0;      // file data written
  std::uint64_t warnings = 0;   // xattrs the destination filesystem refused (logged)
};

// Makes `dst` equal to `src` (a directory). `dst` is created when missing; an existing `dst`
// that is not a directory is an error (it is a host tree root: never replaced wholesale). A file
// is rewritten only when its content differs (compared byte for byte, as rsync -c), through a
// temporary file renamed over it, so a reader never sees half a file. Nothing is fsynced: call
// stateroot::SyncFilesystem once afterwards. Errors name the path and the operation.
SyncStats SyncTree(const std::filesystem::path& src, const std::filesystem::path& dst,
                   const SyncOptions& opts = {});

// rm -rf that does not follow symlinks; a missing path is fine.
void RemoveAll(const std::filesystem::path& path);

}  // namespace lca::recovery
