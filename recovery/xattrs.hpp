#pragma once
// Extended attributes of a path, never following a final symlink (l*xattr). ACLs are the
// system.posix_acl_* attributes and SELinux labels security.selinux, so copying xattrs copies
// both.
#include <filesystem>
#include <map>
#include <string>

namespace lca::recovery {

using Xattrs = std::map<std::string, std::string>;  // name -> raw value

// Every attribute of `path`; a filesystem without xattr support gives none.
Xattrs ReadXattrs(const std::filesystem::path& path);

// Makes `path`'s attributes exactly `want` (sets what differs, removes what is extra). Returns
// how many could not be set or removed because the filesystem or the kernel refused them
// (security.* without SELinux, trusted.*, user.* on a symlink): logged as warnings, since the
// comparison with the manifest reports them if they matter.
int WriteXattrs(const std::filesystem::path& path, const Xattrs& want);

// Lowercase hex, for JSON.
std::string Hex(const std::string& bytes);
std::string Unhex(const std::string& hex);  // throws lca::Error kInvalid

}  // namespace lca::recovery
