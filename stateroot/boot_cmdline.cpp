#include "stateroot/boot_cmdline.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include "common/error.hpp"

namespace lca::stateroot {

std::optional<std::string> OstreeKarg(std::string_view cmdline) {
  size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && std::isspace(static_cast<unsigned char>(cmdline[i]))) ++i;
    size_t j = i;
    while (j < cmdline.size() && !std::isspace(static_cast<unsigned char>(cmdline[j]))) ++j;
    std::string_view arg = cmdline.substr(i, j - i);
    if (arg.rfind("ostree=", 0) == 0) return std::string(arg.substr(7));
    i = j;
  }
  return std::nullopt;
}

std::optional<BootedDeployment> ResolveBooted(const std::filesystem::path& sysroot,
                                              std::string_view cmdline) {
  auto karg = OstreeKarg(cmdline);
  if (!karg) return std::nullopt;
  namespace fs = std::filesystem;
  // Resolve one component at a time, as if `sysroot` were '/' (what openat2's RESOLVE_IN_ROOT
  // does): `resolved` is relative to the sysroot and never contains a symlink, so the kernel is
  // only ever asked to lstat a symlink-free path. An absolute link restarts at the sysroot, and
  // ".." at the top stays at the top, so nothing, however deep in the chain, reaches the
  // machine's own root or the directory holding the sysroot.
  std::vector<fs::path> pending;  // components still to walk, next one at the back
  auto push_components = [&pending](const fs::path& path) {
    std::vector<fs::path> parts;
    for (const auto& c : path.relative_path()) parts.push_back(c);
    pending.insert(pending.end(), parts.rbegin(), parts.rend());
  };
  push_components(fs::path(*karg));
  fs::path resolved;
  int links = 0;
  bool dangling = false;
  while (!pending.empty() && !dangling) {
    const fs::path comp = pending.back();
    pending.pop_back();
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      resolved = resolved.parent_path();
      continue;
    }
    const fs::path next = resolved / comp;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(sysroot / next, ec);
    if (!fs::is_symlink(st)) {
      if (ec || !fs::exists(st)) dangling = true;
      resolved = next;
      continue;
    }
    fs::path target = fs::read_symlink(sysroot / next, ec);
    if (ec || ++links > 40) {  // 40: the kernel's own limit (ELOOP)
      dangling = true;
      resolved = next;
      continue;
    }
    if (target.is_absolute()) resolved.clear();
    push_components(target);
  }
  const fs::path p = sysroot / resolved;
  std::error_code ec;
  // Expect ostree/deploy/<stateroot>/deploy/<checksum>.<serial>
  std::vector<std::string> parts;
  for (const auto& c : resolved) parts.push_back(c.string());
  if (dangling || !fs::is_directory(p, ec) || parts.size() != 5 || parts[0] != "ostree" ||
      parts[1] != "deploy" || parts[3] != "deploy") {
    throw Error(Errc::kNotFound, "kernel argument ostree=" + *karg +
                                     " does not resolve to a deployment under " + sysroot.string() +
                                     " (got " + p.string() + ")");
  }
  BootedDeployment b;
  b.stateroot = parts[2];
  const std::string& leaf = parts[4];
  const auto dot = leaf.rfind('.');
  b.checksum = leaf.substr(0, dot);
  if (dot != std::string::npos) b.serial = std::atoi(leaf.c_str() + dot + 1);
  b.deployment_dir = p;
  return b;
}

std::string StaterootNameForVersion(std::string_view version) {
  std::string name = "rhcos_" + std::string(version);
  std::replace(name.begin() + 6, name.end(), '-', '_');
  return name;
}

}  // namespace lca::stateroot
