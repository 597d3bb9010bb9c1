#pragma once
// Talking to registries about a seed image, through skopeo (argv only): read its labels and
// layer sizes without pulling, and fetch it once into an OCI layout on the sysroot's filesystem.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/process.hpp"

namespace lca::stateroot {

struct RegistryAccess {
  // A dockerconfigjson for the registry, or none (anonymous).
  std::optional<std::filesystem::path> authfile;
  // containers-registries.conf for mirrors and insecure (loopback) registries; none = system's.
  // Passed as --registries-conf: skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF.
  std::optional<std::filesystem::path> registries_conf;
  // Signature policy (containers-policy.json) for copies; none = the system's.
  std::optional<std::filesystem::path> policy;
  int retries = 3;
  std::chrono::seconds timeout{std::chrono::minutes(10)};
};

// "quay.io/x/seed:4.15" and "docker://..." → "docker://..."; "oci:DIR[:tag]" and
// "oci-archive:FILE" are kept, so air-gapped sites can hand the agent a layout or archive.
std::string SkopeoReference(const std::string& image);

// What a failed skopeo run says, for an operator: its `msg="…"` without the log framing and
// the "Error parsing image name" preamble skopeo puts before every registry error.
std::string SkopeoFailure(const ProcessResult& r);

struct SeedInspection {
  std::string digest;            // of the manifest
  Json labels = Json::object();  // config labels
  std::vector<int64_t> layer_sizes;
  int64_t LayerBytes() const;
};

// `skopeo inspect`: labels, digest and layer sizes, nothing pulled.
SeedInspection InspectSeed(ProcessRunner& runner, const std::string& image,
                           const RegistryAccess& access);

// `skopeo copy` into <layout>:<tag>. The layout dir is created; blobs keep their digests.
void FetchSeed(ProcessRunner& runner, const std::string& image, const RegistryAccess& access,
               const std::filesystem::path& layout, const std::string& tag);

// A pull secret checked and written 0600 to `path` for skopeo/podman, removed when this goes
// out of scope (also on every error path): secrets never outlive the call that needs them.
class TransientAuthFile {
 public:
  // `dockerconfigjson` must be a JSON object with an "auths" object; otherwise kInvalid naming
  // `source`.
  TransientAuthFile(const std::filesystem::path& path, const std::string& dockerconfigjson,
                    const std::string& source);
  ~TransientAuthFile();
  TransientAuthFile(const TransientAuthFile&) = delete;
  TransientAuthFile& operator=(const TransientAuthFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace lca::stateroot
