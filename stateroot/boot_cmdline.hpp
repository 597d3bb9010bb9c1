#pragma once
// Which deployment is booted, from the kernel command line, resolved the way ostree-prepare-root
// does: the `ostree=` argument names a path inside the sysroot (/ostree/boot.N/<os>/<bootcsum>/
// <serial>) that is a symlink chain to ostree/deploy/<stateroot>/deploy/<checksum>.<serial>.
// Plain filesystem reads, so it works on a throwaway sysroot and before libostree is loaded.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace lca::stateroot {

struct BootedDeployment {
  std::string stateroot;                 // e.g. "rhcos"
  std::string checksum;                  // commit checksum
  int serial = 0;                        // deploy serial
  std::filesystem::path deployment_dir;  // inside the sysroot
};

// The value of `ostree=` in a kernel command line, if any.
std::optional<std::string> OstreeKarg(std::string_view cmdline);

// Resolves `ostree=` inside `sysroot`. nullopt when the command line has no `ostree=` (the host
// was not booted from ostree); an lca::Error kNotFound when it has one that does not resolve
// to a deployment directory (a broken or foreign sysroot: say so, never guess).
std::optional<BootedDeployment> ResolveBooted(const std::filesystem::path& sysroot,
                                              std::string_view cmdline);

// The stateroot an IBU to `version` creates: rhcos_<version with '-' replaced by '_'>.
std::string StaterootNameForVersion(std::string_view version);

}  // namespace lca::stateroot
