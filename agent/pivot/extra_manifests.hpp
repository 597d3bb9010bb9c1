#pragma once
// spec.extraManifests: manifests kept in ConfigMaps, checked at Prep and exported into the new
// stateroot before the pivot so the agent can apply them after it (reference-lca §3.2 item 3,
// §5.1 item 6, §5.4 item 5). In the embedded default a ConfigMap is the file
// <config_dir>/configmaps/<namespace>/<name>.yaml (PRODUCT.md §3).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/ibu.hpp"
#include "common/json_yaml.hpp"

namespace lca::pivot {

// On each manifest (not on the ConfigMap), as in the Go operator; absent or "" = last.
inline constexpr std::string_view kApplyWaveAnnotation = "lca.openshift.io/apply-wave";
inline constexpr int64_t kDefaultApplyWave = std::numeric_limits<int32_t>::max();
// Where Prep stores ValidationResult::WarningText() on the IBU.
inline constexpr std::string_view kValidationWarningAnnotation =
    "extra-manifest.lca.openshift.io/validation-warning";

struct ExtraManifest {
  Json object;            // the manifest; metadata.uid and metadata.resourceVersion removed
  std::string configmap;  // "<namespace>/<name>" of the ConfigMap it came from
  std::string key;        // its data key there
  size_t index = 0;       // 1-based among that key's manifests, List items counted one by one
  int64_t wave = kDefaultApplyWave;

  // "ConfigMap <ns>/<name> key <key> manifest <index>", for messages.
  std::string Origin() const;
};

// Manifests sharing one apply-wave; groups ascend by wave.
struct ManifestGroup {
  int64_t wave = kDefaultApplyWave;
  std::vector<ExtraManifest> manifests;
};

// Reads the referenced ConfigMaps (duplicate refs once), takes each one's data values in key
// order, splits each value into its YAML documents (a `kind: List` gives its items) and groups
// all manifests by apply-wave: ascending, ties by metadata.name, then by load order (Go's
// SortAndGroupByApplyWave). Throws lca::Error: kNotFound for a missing ConfigMap file, kInvalid
// for a file that is not a ConfigMap, bad YAML, a document that is not an object, or an
// apply-wave that is not an integer.
std::vector<ManifestGroup> LoadExtraManifests(const std::filesystem::path& config_dir,
                                              const std::vector<api::ConfigMapRef>& refs);

struct GroupKind {
  std::string group;  // "" for the core API ("v1")
  std::string kind;
  bool operator==(const GroupKind&) const = default;
};

// Namespaces that exist on every SNO cluster, so objects in them draw no warning.
std::vector<std::string> DefaultKnownNamespaces();

struct ValidationOptions {
  std::vector<std::string> known_namespaces = DefaultKnownNamespaces();  // plus "default"
  std::vector<GroupKind> known_kinds{};  // in addition to the built-in list
};

struct ValidationResult {
  std::vector<std::string> errors;    // any error fails Prep
  std::vector<std::string> warnings;  // Prep goes on; the text is stored on the IBU
  std::string ErrorText() const;      // errors joined with "; "
  std::string WarningText() const;    // warnings joined with "; " (the annotation's value)
};

// The static stand-in for the operator's dry-run (there is no API server in the embedded
// default). Errors: missing apiVersion, kind or metadata.name; MachineConfig and the OLM
// install kinds. Warnings: a namespace that is neither known nor created by an earlier
// Namespace manifest; a kind that is neither built in nor defined by an earlier
// CustomResourceDefinition. Message texts are the Go operator's.
ValidationResult ValidateExtraManifests(const std::vector<ManifestGroup>& groups,
                                        const ValidationOptions& options = {});

// Writes dest_dir/group<k>/<jj>_<Kind>_<name>_<namespace>.yaml (k from 1; jj 1-based,
// zero-padded to the width of the group's size and at least 2 digits so file-name order is
// apply order; namespace empty for cluster-scoped objects). Files 0600 written atomically,
// directories 0700. Re-runnable: files are replaced and group<k> directories or files left
// by an earlier export that this one does not produce are removed. A kind, name or namespace
// that is empty (kind, name), or holds '/', ".." or NUL is refused (kInvalid) before anything
// is written.
// The export goes to `rel` beneath `root` (the new stateroot, whose /var the seed provided):
// every directory and file is reached without following a symlink, and a symlink on the way
// (var/opt -> /etc, say) is refused with kInvalid naming it, before anything is written there.
void ExportExtraManifests(const std::vector<ManifestGroup>& groups,
                          const std::filesystem::path& root, std::string_view rel);
// The same with `dest_dir` trusted as a whole (its parent is made if missing): tests and tools.
void ExportExtraManifests(const std::vector<ManifestGroup>& groups,
                          const std::filesystem::path& dest_dir);

}  // namespace lca::pivot
