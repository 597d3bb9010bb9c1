#include "precache/podman.hpp"

#include <algorithm>
#include <cctype>

#include "common/error.hpp"
#include "common/json_yaml.hpp"

namespace lca::precache {
namespace {

// The repository part and the tag of a tag reference: "reg/repo:tag" -> {"reg/repo", "tag"}.
// A ':' before the last '/' belongs to a registry port.
std::pair<std::string, std::string> SplitTag(std::string_view ref) {
  const auto slash = ref.rfind('/');
  const auto colon = ref.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    return {std::string(ref.substr(0, colon)), std::string(ref.substr(colon + 1))};
  }
  return {std::string(ref), ""};
}

// A reference names its registry when its first component has a '.' or ':' or is localhost,
// as containers/image decides.
bool HasRegistry(std::string_view ref) {
  const auto slash = ref.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view first = ref.substr(0, slash);
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost";
}

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool InRange(int v, int lo, int hi) { return v >= lo && v <= hi; }

}  // namespace

std::vector<std::string> PodmanArgv(const PodmanConfig& cfg, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {cfg.binary};
  if (!cfg.root.empty()) argv.insert(argv.end(), {"--root", cfg.root.string()});
  if (!cfg.runroot.empty()) argv.insert(argv.end(), {"--runroot", cfg.runroot.string()});
  if (!cfg.tmpdir.empty()) argv.insert(argv.end(), {"--tmpdir", cfg.tmpdir.string()});
  if (!cfg.storage_driver.empty()) {
    argv.insert(argv.end(), {"--storage-driver", cfg.storage_driver});
  }
  // A pull never starts a container: no systemd or journald needed, which keeps podman working
  // where systemd is not PID 1 (containers, test beds).
  argv.insert(argv.end(), {"--cgroup-manager", "cgroupfs", "--events-backend", "file"});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

ProcessSpec PodmanSpec(const PodmanConfig& cfg, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout, bool niced) {
  ProcessSpec spec;
  std::vector<std::string> argv = PodmanArgv(cfg, args);
  if (niced && cfg.use_nice) {
    const int n = InRange(cfg.nice, -20, 19) ? cfg.nice : 0;
    const int c = InRange(cfg.ionice_class, 0, 3) ? cfg.ionice_class : 2;
    const int p = InRange(cfg.ionice_priority, 0, 7) ? cfg.ionice_priority : 4;
    std::vector<std::string> prefix = {"nice",   "-n", std::to_string(n),
                                       "ionice", "-c", std::to_string(c)};
    // Classes 0 (none) and 3 (idle) take no priority level.
    if (c == 1 || c == 2) prefix.insert(prefix.end(), {"-n", std::to_string(p)});
    argv.insert(argv.begin(), prefix.begin(), prefix.end());
  }
  spec.argv = std::move(argv);
  spec.env = cfg.env;
  if (!cfg.registries_conf.empty()) {
    spec.env["CONTAINERS_REGISTRIES_CONF"] = cfg.registries_conf.string();
  }
  spec.timeout = timeout;
  spec.stderr_tail_bytes = 16384;
  return spec;
}

std::string NormalizeReference(std::string_view ref) {
  if (ref.find('@') != std::string_view::npos) return std::string(ref);
  auto [repo, tag] = SplitTag(ref);
  if (tag.empty()) return std::string(ref) + ":latest";
  return std::string(ref);
}

LocalImages::LocalImages(std::vector<LocalImage> images) : images_(std::move(images)) {
  for (const auto& img : images_) {
    for (const auto& n : img.names) names_.insert(NormalizeReference(n));
    for (const auto& d : img.repo_digests) repo_digests_.insert(d);
  }
}

bool LocalImages::Contains(std::string_view ref_in) const {
  if (!HasRegistry(ref_in)) return false;
  const auto at = ref_in.find('@');
  if (at != std::string_view::npos) {
    // "repo[:tag]@sha256:…": the digest decides; a tag beside it is informational.
    const std::string repo = SplitTag(ref_in.substr(0, at)).first;
    return repo_digests_.count(repo + std::string(ref_in.substr(at))) > 0;
  }
  return names_.count(NormalizeReference(ref_in)) > 0;
}

std::vector<std::string> LocalImages::DigestsOf(std::string_view tag_ref) const {
  const std::string name = NormalizeReference(tag_ref);
  const std::string repo = SplitTag(name).first;
  std::vector<std::string> out;
  for (const auto& img : images_) {
    const bool named = std::any_of(img.names.begin(), img.names.end(), [&](const std::string& n) {
      return NormalizeReference(n) == name;
    });
    if (!named) continue;
    out.insert(out.end(), img.digests.begin(), img.digests.end());
    for (const auto& rd : img.repo_digests) {
      const auto at = rd.find('@');
      if (at != std::string::npos && rd.substr(0, at) == repo) out.push_back(rd.substr(at + 1));
    }
  }
  return out;
}

std::vector<LocalImage> ParseLocalImages(std::string_view json_text) {
  std::vector<LocalImage> out;
  const Json j = ParseJson(json_text.empty() ? std::string_view("[]") : json_text,
                           "podman images --format json output");
  if (!j.is_array()) {
    throw Error(Errc::kProcess, "podman images --format json printed no array");
  }
  for (const auto& e : j) {
    if (!e.is_object()) continue;
    LocalImage img;
    img.id = e.value("Id", "");
    img.names = Strings(e, "Names");
    for (auto& t : Strings(e, "RepoTags")) {
      if (t != "<none>:<none>" && t != "<none>") img.names.push_back(std::move(t));
    }
    img.repo_digests = Strings(e, "RepoDigests");
    if (e.contains("Digest") && e["Digest"].is_string()) img.digests.push_back(e["Digest"]);
    if (e.contains("Created") && e["Created"].is_number())
      img.created = e["Created"].get<int64_t>();
    if (e.contains("Size") && e["Size"].is_number()) img.size = e["Size"].get<int64_t>();
    if (e.contains("Containers") && e["Containers"].is_number_unsigned()) {
      img.containers = e["Containers"].get<uint64_t>();
    }
    // podman marks dangling images with "Dangling" in newer versions; 4.3 has no such field,
    // and a dangling image is exactly one without names.
    img.dangling = e.value("Dangling", img.names.empty());
    out.push_back(std::move(img));
  }
  return out;
}

std::string PodmanFailure(const ProcessResult& r) {
  std::string tail = r.stderr_tail;
  while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) tail.pop_back();
  // podman prints "Error: <message>" last; earlier lines are per-attempt noise.
  const auto at = tail.rfind("Error: ");
  if (at != std::string::npos) return tail.substr(at + 7);
  if (tail.empty()) return r.Describe();
  return r.Describe() + ": " + tail;
}

LocalImages ListLocalImages(ProcessRunner& runner, const PodmanConfig& cfg,
                            std::chrono::milliseconds timeout) {
  const ProcessResult r = runner.Run(PodmanSpec(cfg, {"images", "--format", "json"}, timeout));
  if (!r.ok()) {
    throw Error(r.timed_out ? Errc::kTimeout : Errc::kProcess,
                "listing local images (podman images): " + PodmanFailure(r));
  }
  return LocalImages(ParseLocalImages(r.stdout_data));
}

}  // namespace lca::precache
