#pragma once
// What a directory tree holds, entry by entry, so a backup can be checked before it is used and
// a restored tree can be compared with the backup it came from: type, permission bits, numeric
// owner, size and sha256 of files, symlink targets, device numbers, every xattr (ACLs, SELinux
// labels) and which files are hardlinks of one another. Times are left out on purpose: the
// restore, like rsync --no-t, does not promise them.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "recovery/tree_sync.hpp"
#include "recovery/xattrs.hpp"

namespace lca::recovery {

struct TreeEntry {
  std::string path;  // relative to the root, "." for the root itself
  char type = '?';   // f d l c b p (sockets are skipped, as the copy skips them)
  mode_t mode = 0;   // permission bits with setuid/setgid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint64_t size = 0;  // files
  std::string sha256;      // files: "sha256:<hex>"
  std::string target;      // symlinks
  std::uint64_t rdev = 0;  // device nodes
  Xattrs xattrs;
  std::string hardlink;  // files: the first path (in walk order) of the same inode, else ""

  bool operator==(const TreeEntry&) const = default;
};

// Walks `root` in sorted order, leaving out what `exclude` excludes.
std::vector<TreeEntry> ScanTree(const std::filesystem::path& root,
                                const PathFilter* exclude = nullptr);

Json TreeToJson(const std::vector<TreeEntry>& entries);
// Throws lca::Error kInvalid naming `what` and the bad field.
std::vector<TreeEntry> TreeFromJson(const Json& j, const std::string& what);

// Human-readable differences, at most `max` of them ("etc/hosts: content differs (size 12, backup
// has 10)", "usr/x: missing", "kubelet/y: not in the backup"). Empty when the trees are equal.
// Entries `exclude` excludes are ignored on both sides.
std::vector<std::string> CompareTrees(const std::vector<TreeEntry>& expected,
                                      const std::vector<TreeEntry>& actual,
                                      const PathFilter* exclude = nullptr, std::size_t max = 20);

}  // namespace lca::recovery
