#pragma once
// Named failpoints, compiled into every build and armed only through the environment:
//   LCA_FAILPOINTS="store.persist=crash,prep.import=error,atomic-write.before-rename=sleep(500)"
// Actions: error (throw lca::Error kInternal "failpoint <name>"), crash (_exit(137) at once,
// as a SIGKILL would leave things), sleep(ms). An optional "N*" prefix fires only on the N-th
// hit ("2*crash"), so a test can let the first write through and kill the second.
#include <string>
#include <string_view>

namespace lca {

// Re-reads LCA_FAILPOINTS (tests call it after setenv; the daemon reads it once at start).
void ReloadFailpoints();

// Arms or disarms programmatically (tests). An empty action disarms.
void SetFailpoint(std::string_view name, std::string_view action);

void HitFailpoint(std::string_view name);

}  // namespace lca

#define LCA_FAILPOINT(name) ::lca::HitFailpoint(name)
