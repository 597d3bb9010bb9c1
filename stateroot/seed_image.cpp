#include "stateroot/seed_image.hpp"

#include <unistd.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::stateroot {
namespace {

ProcessSpec Skopeo(const RegistryAccess& access, std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {"skopeo"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (access.registries_conf) {
    spec.env["CONTAINERS_REGISTRIES_CONF"] = access.registries_conf->string();
  }
  spec.timeout = access.timeout;
  return spec;
}

}  // namespace

std::string SkopeoReference(const std::string& image) {
  if (image.rfind("docker://", 0) == 0 || image.rfind("oci:", 0) == 0 ||
      image.rfind("oci-archive:", 0) == 0) {
    return image;
  }
  return "docker://" + image;
}

int64_t SeedInspection::LayerBytes() const {
  int64_t total = 0;
  for (int64_t s : layer_sizes) total += s;
  return total;
}

SeedInspection InspectSeed(ProcessRunner& runner, const std::string& image,
                           const RegistryAccess& access) {
  std::vector<std::string> args = {"inspect", "--retry-times", std::to_string(access.retries)};
  if (access.authfile) {
    args.push_back("--authfile");
    args.push_back(access.authfile->string());
  } else {
    args.push_back("--no-creds");
  }
  args.push_back(SkopeoReference(image));
  const auto result = RunChecked(runner, Skopeo(access, args));
  const Json j = ParseJson(result.stdout_data, "skopeo inspect output");
  SeedInspection out;
  out.digest = j.value("Digest", "");
  if (j.contains("Labels") && j["Labels"].is_object()) out.labels = j["Labels"];
  if (j.contains("LayersData") && j["LayersData"].is_array()) {
    for (const auto& l : j["LayersData"]) out.layer_sizes.push_back(l.value("Size", int64_t{0}));
  }
  return out;
}

void FetchSeed(ProcessRunner& runner, const std::string& image, const RegistryAccess& access,
               const std::filesystem::path& layout, const std::string& tag) {
  EnsureDir(layout, 0700);
  std::vector<std::string> args = {"copy", "--retry-times", std::to_string(access.retries),
                                   "--quiet"};
  if (access.authfile) {
    args.push_back("--src-authfile");
    args.push_back(access.authfile->string());
  } else {
    args.push_back("--src-no-creds");
  }
  args.push_back(SkopeoReference(image));
  args.push_back("oci:" + layout.string() + ":" + tag);
  RunChecked(runner, Skopeo(access, args));
}

TransientAuthFile::TransientAuthFile(const std::filesystem::path& path,
                                     const std::string& dockerconfigjson, const std::string& source)
    : path_(path) {
  const Json j = ParseJson(dockerconfigjson, source);
  if (!j.is_object() || !j.contains("auths") || !j["auths"].is_object()) {
    throw Error(Errc::kInvalid, source + ": not a dockerconfigjson (expected {\"auths\": {...}})");
  }
  EnsureDir(path_.parent_path(), 0700);
  WriteFileAtomic(path_, dockerconfigjson, 0600);
}

TransientAuthFile::~TransientAuthFile() { ::unlink(path_.c_str()); }

}  // namespace lca::stateroot
