#pragma once
// Registry mirroring: ImageContentSourcePolicy and ImageDigestMirrorSet manifests rendered into
// a containers-registries.conf (version 2, TOML), the way the Machine Config Operator writes
// /etc/containers/registries.conf on a node (seed 002: mirror-by-digest-only, one
// [[registry.mirror]] per mirror in order). podman and skopeo then try each mirror in order and
// the source last (unless an IDMS says NeverContactSource), for seed and pre-cache pulls alike.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lca::precache {

struct MirrorRule {
  std::string source;                 // registry[/repository]
  std::vector<std::string> mirrors;   // in order of preference
  bool never_contact_source = false;  // IDMS mirrorSourcePolicy: NeverContactSource
};

// Rules from one YAML/JSON text holding any number of documents, each an
// ImageContentSourcePolicy (spec.repositoryDigestMirrors), an ImageDigestMirrorSet
// (spec.imageDigestMirrors) or a List of them (`oc get ... -o yaml`). Other kinds are kInvalid
// naming `what` and the kind (ImageTagMirrorSet is not supported: its tag mirrors need a newer
// containers/image than this host's podman).
std::vector<MirrorRule> ParseMirrorManifests(std::string_view text, std::string_view what);

// Same source merged (mirrors kept in first-seen order, de-duplicated); sorted by source.
std::vector<MirrorRule> MergeMirrorRules(const std::vector<MirrorRule>& rules);

// The registries.conf text. `insecure_registries` (host[:port]) marks every registry and mirror
// location on those hosts `insecure = true` (plain HTTP or unverified TLS), as the cluster's
// image.config insecureRegistries would.
std::string RenderRegistriesConf(const std::vector<MirrorRule>& rules,
                                 const std::vector<std::string>& insecure_registries = {});

// The sources, for the seed release-registry override (reference-lca §4.1).
std::vector<std::string> MirrorSources(const std::vector<MirrorRule>& rules);

// The sources of every ICSP/IDMS manifest (*.yaml, *.yml, *.json) in `dir`, the cluster's
// mirror objects in the embedded default (<config-dir>/mirrors); none when `dir` is absent.
std::vector<std::string> MirrorSourcesInDir(const std::filesystem::path& dir);

}  // namespace lca::precache
