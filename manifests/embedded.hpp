#pragma once
// The manifests of this directory, embedded at build time (embed.cmake).
#include <string>
#include <string_view>
#include <vector>

namespace lca::manifests {

struct Manifest {
  std::string_view file;  // "00-crd.yaml"
  std::string_view yaml;  // its text, possibly several documents
};

// In file-name order (the order `oc apply` needs: the CRD before anything using it).
const std::vector<Manifest>& All();

// All of them as one multi-document YAML stream ("---" between files), for `oc apply -f -`.
std::string Concatenated();

}  // namespace lca::manifests
