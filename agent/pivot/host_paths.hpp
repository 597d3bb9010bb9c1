#pragma once
// Where things live inside a stateroot other than the booted one. The daemon's own state dir is
// configurable (tests point it at the booted stateroot's var/lib/lca); another stateroot's is
// always <sysroot>/ostree/deploy/<name>/var/lib/lca, the path its own agent sees as
// /var/lib/lca after it boots (reference §8.4).
#include <filesystem>
#include <string>

#include "common/state_layout.hpp"

namespace lca::pivot {

inline std::filesystem::path StaterootRoot(const std::filesystem::path& sysroot,
                                           const std::string& stateroot) {
  return sysroot / "ostree" / "deploy" / stateroot;
}

inline std::filesystem::path StaterootStateDir(const std::filesystem::path& sysroot,
                                               const std::string& stateroot) {
  return StaterootRoot(sysroot, stateroot) / "var" / "lib" / "lca";
}

inline constexpr const char* kAutoRollbackConfigFile = state_layout::kAutoRollbackConfig;
inline constexpr const char* kObjectFile = state_layout::kObject;

}  // namespace lca::pivot
