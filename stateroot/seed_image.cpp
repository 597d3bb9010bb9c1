#include "stateroot/seed_image.hpp"

#include <unistd.h>

#include <cctype>
#include <future>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::stateroot {
namespace {

// skopeo <global options> <subcommand> <subcommand options...> <refs...>
ProcessSpec Skopeo(const RegistryAccess& access, const std::string& subcommand,
                   std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {"skopeo"};
  if (access.policy && subcommand == "copy") {
    spec.argv.push_back("--policy");
    spec.argv.push_back(access.policy->string());
  }
  spec.argv.push_back(subcommand);
  if (access.registries_conf) {
    spec.argv.push_back("--registries-conf");
    spec.argv.push_back(access.registries_conf->string());
  }
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = access.timeout;
  return spec;
}

// skopeo logs its failure as `time="…" level=fatal msg="…"`: the message is what an operator
// needs, without the log framing and without skopeo's "Error parsing image name" preamble,
// which it prints for every registry error (a wrong password included).
}  // namespace

std::string SkopeoFailure(const ProcessResult& r) {
  const std::string& err = r.stderr_tail;
  const auto at = err.rfind("msg=\"");
  if (at == std::string::npos) {
    std::string tail = err;
    while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) tail.pop_back();
    return r.Describe() + (tail.empty() ? "" : ": " + tail);
  }
  std::string msg;
  for (size_t i = at + 5; i < err.size() && err[i] != '"'; ++i) {
    if (err[i] == '\\' && i + 1 < err.size()) ++i;
    msg += err[i];
  }
  if (msg.rfind("Error parsing image name", 0) == 0) {
    if (auto colon = msg.find("\": "); colon != std::string::npos) msg = msg.substr(colon + 3);
  }
  return msg;
}

namespace {

ProcessResult RunSkopeo(ProcessRunner& runner, const ProcessSpec& spec, const std::string& what) {
  ProcessResult r = runner.Run(spec);
  if (!r.ok()) {
    throw Error(r.timed_out ? Errc::kTimeout : Errc::kProcess, what + ": " + SkopeoFailure(r));
  }
  return r;
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
  std::vector<std::string> args = {"--retry-times", std::to_string(access.retries)};
  if (access.authfile) {
    args.push_back("--authfile");
    args.push_back(access.authfile->string());
  } else {
    args.push_back("--no-creds");
  }
  args.push_back(SkopeoReference(image));
  auto raw = [&runner, &access, args](const std::string& ref) {
    std::vector<std::string> raw_args = args;
    raw_args.back() = ref;
    raw_args.insert(raw_args.end() - 1, "--raw");
    return ParseJson(
        RunSkopeo(runner, Skopeo(access, "inspect", raw_args), "inspecting " + ref).stdout_data,
        "skopeo inspect --raw output");
  };
  // skopeo < 1.10 (Debian 12 has 1.9) prints no LayersData: the sizes are then in the manifest.
  // Both are asked at once: each is a skopeo start plus registry round trips (~80 ms here), and
  // which one is needed shows only in the first answer. The manifest's failure matters only when
  // the manifest is needed; the labels' failure is the one reported.
  auto manifest_ahead = std::async(std::launch::async, raw, args.back());
  const auto result =
      RunSkopeo(runner, Skopeo(access, "inspect", args), "inspecting " + SkopeoReference(image));
  const Json j = ParseJson(result.stdout_data, "skopeo inspect output");
  SeedInspection out;
  out.digest = j.value("Digest", "");
  if (j.contains("Labels") && j["Labels"].is_object()) out.labels = j["Labels"];
  if (j.contains("LayersData") && j["LayersData"].is_array()) {
    for (const auto& l : j["LayersData"]) out.layer_sizes.push_back(l.value("Size", int64_t{0}));
    return out;
  }
  Json manifest = manifest_ahead.get();
  if (manifest.contains("manifests")) {
    // A manifest list: the image skopeo chose above is this machine's platform.
    const std::string ref = args.back();
    const std::string base = ref.substr(
        0, ref.find_last_of(":@") > ref.find_last_of('/') ? ref.find_last_of(":@") : ref.size());
    if (out.digest.empty() || ref.rfind("docker://", 0) != 0) {
      throw Error(Errc::kInvalid, "cannot tell the size of " + image +
                                      ": a manifest list without a platform digest");
    }
    manifest = raw(base + "@" + out.digest);
  }
  if (!manifest.contains("layers") || !manifest["layers"].is_array()) {
    throw Error(Errc::kInvalid,
                "cannot tell the size of " + image + ": its manifest lists no layers");
  }
  for (const auto& l : manifest["layers"]) out.layer_sizes.push_back(l.value("size", int64_t{0}));
  return out;
}

void FetchSeed(ProcessRunner& runner, const std::string& image, const RegistryAccess& access,
               const std::filesystem::path& layout, const std::string& tag) {
  EnsureDir(layout, 0700);
  std::vector<std::string> args = {"--retry-times", std::to_string(access.retries), "--quiet"};
  if (access.authfile) {
    args.push_back("--src-authfile");
    args.push_back(access.authfile->string());
  } else {
    args.push_back("--src-no-creds");
  }
  args.push_back(SkopeoReference(image));
  args.push_back("oci:" + layout.string() + ":" + tag);
  RunSkopeo(runner, Skopeo(access, "copy", args), "fetching " + SkopeoReference(image));
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
