#include "manifests/embedded.hpp"

namespace lca::manifests {

std::string Concatenated() {
  std::string out;
  for (const auto& m : All()) {
    if (!out.empty()) out += "---\n";
    out += m.yaml;
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  return out;
}

}  // namespace lca::manifests
