#include "precache/storage_cleanup.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "common/error.hpp"
#include "common/json_yaml.hpp"

namespace lca::precache {

int UsagePercent(const FsUsage& fs) {
  if (fs.size_bytes == 0) return 0;
  const uint64_t used = fs.size_bytes - std::min(fs.available_bytes, fs.size_bytes);
  return static_cast<int>((used * 100) / fs.size_bytes);
}

bool KeepSet::Keeps(const LocalImage& img) const {
  if (refs.count(img.id) > 0) return true;
  for (const auto& n : img.names) {
    if (refs.count(n) > 0 || refs.count(NormalizeReference(n)) > 0) return true;
  }
  for (const auto& d : img.repo_digests) {
    if (refs.count(d) > 0) return true;
  }
  return false;
}

std::vector<LocalImage> CleanupCandidates(const std::vector<LocalImage>& images,
                                          const KeepSet& keep) {
  std::vector<LocalImage> out;
  for (const auto& img : images) {
    if (img.containers > 0 || keep.Keeps(img)) continue;
    out.push_back(img);
  }
  std::stable_sort(out.begin(), out.end(), [](const LocalImage& a, const LocalImage& b) {
    if (a.dangling != b.dangling) return a.dangling;
    return a.created < b.created;
  });
  return out;
}

KeepSet InUseImages(ProcessRunner& runner, const PodmanConfig& podman, const std::string& crictl) {
  KeepSet keep;
  auto run_json = [&](const ProcessSpec& spec, const std::string& what) -> std::optional<Json> {
    try {
      const ProcessResult r = runner.Run(spec);
      if (!r.ok()) {
        spdlog::warn("image cleanup: {} failed ({}): {}", what, r.Describe(), r.stderr_tail);
        return std::nullopt;
      }
      return ParseJson(r.stdout_data.empty() ? "null" : r.stdout_data, what);
    } catch (const Error& e) {
      if (e.code() == Errc::kNotFound) {
        spdlog::info("image cleanup: {}: {} (no CRI-O on this host?)", what, e.what());
      } else {
        spdlog::warn("image cleanup: {}: {}", what, e.what());
      }
      return std::nullopt;
    }
  };
  const auto timeout = std::chrono::seconds(60);
  if (auto j =
          run_json(PodmanSpec(podman, {"ps", "-a", "--format", "json"}, timeout), "podman ps -a")) {
    if (j->is_array()) {
      for (const auto& c : *j) {
        if (c.contains("ImageID") && c["ImageID"].is_string()) keep.refs.insert(c["ImageID"]);
        if (c.contains("Image") && c["Image"].is_string()) keep.refs.insert(c["Image"]);
      }
    }
  }
  if (auto j = run_json(ProcessSpec{.argv = {crictl, "images", "-o", "json"}, .timeout = timeout},
                        "crictl images")) {
    if (j->contains("images") && (*j)["images"].is_array()) {
      for (const auto& i : (*j)["images"]) {
        if (i.value("pinned", false) && i.contains("id")) keep.refs.insert(i["id"]);
      }
    }
  }
  if (auto j = run_json(ProcessSpec{.argv = {crictl, "ps", "-a", "-o", "json"}, .timeout = timeout},
                        "crictl ps -a")) {
    if (j->contains("containers") && (*j)["containers"].is_array()) {
      for (const auto& c : (*j)["containers"]) {
        if (c.contains("imageRef") && c["imageRef"].is_string()) keep.refs.insert(c["imageRef"]);
        if (c.contains("image") && c["image"].contains("image")) {
          keep.refs.insert(c["image"]["image"].get<std::string>());
        }
      }
    }
  }
  // CRI-O reports ids without the "sha256:" prefix podman never shows; keep both spellings.
  std::set<std::string> extra;
  for (const auto& r : keep.refs) {
    if (r.rfind("sha256:", 0) == 0) extra.insert(r.substr(7));
  }
  keep.refs.insert(extra.begin(), extra.end());
  return keep;
}

CleanupResult CleanupStorage(ProcessRunner& runner, const PodmanConfig& podman, const KeepSet& keep,
                             const CleanupOptions& opts, const std::function<FsUsage()>& usage) {
  CleanupResult res;
  res.usage_before = res.usage_after = UsagePercent(usage());
  // "Exceeded" only above the threshold: 50 % at 50 % is fine, as in the reference.
  res.exceeded = res.usage_before > opts.threshold_percent;
  if (!res.exceeded) return res;
  const auto images = ListLocalImages(runner, podman).images();
  const auto candidates = CleanupCandidates(images, keep);
  spdlog::info("image cleanup: usage {}% > {}%: {} removable images of {}", res.usage_before,
               opts.threshold_percent, candidates.size(), images.size());
  const size_t batch = std::max<size_t>(opts.batch, 1);
  for (size_t i = 0; i < candidates.size(); i += batch) {
    std::vector<std::string> args = {"rmi"};
    std::vector<std::string> ids;
    for (size_t j = i; j < std::min(i + batch, candidates.size()); ++j) {
      // The id and every name: podman refuses to remove by id alone an image that has several
      // tags ("must force"), and -f would also remove images containers use.
      args.push_back(candidates[j].id);
      args.insert(args.end(), candidates[j].names.begin(), candidates[j].names.end());
      args.insert(args.end(), candidates[j].repo_digests.begin(), candidates[j].repo_digests.end());
      ids.push_back(candidates[j].id);
    }
    try {
      const ProcessResult r = runner.Run(PodmanSpec(podman, args, std::chrono::minutes(5)));
      if (!r.ok()) spdlog::warn("image cleanup: podman rmi: {}", PodmanFailure(r));
    } catch (const std::exception& e) {
      spdlog::warn("image cleanup: podman rmi: {}", e.what());  // errors ignored, as LCA does
    }
    res.removed.insert(res.removed.end(), ids.begin(), ids.end());
    res.usage_after = UsagePercent(usage());
    if (res.usage_after <= opts.threshold_percent) return res;
  }
  res.ran_out = true;
  spdlog::warn("image cleanup: no more images to remove and usage is still {}% (> {}%)",
               res.usage_after, opts.threshold_percent);
  return res;
}

std::optional<int> CleanupThresholdFromAnnotations(
    const std::map<std::string, std::string>& annotations) {
  if (auto it = annotations.find(kAnnotationCleanupOnPrep);
      it != annotations.end() && it->second == "Disabled") {
    return std::nullopt;
  }
  auto it = annotations.find(kAnnotationCleanupThreshold);
  if (it == annotations.end()) return kDefaultCleanupThresholdPercent;
  const std::string& v = it->second;
  if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(v) > 100) {
    spdlog::warn("image cleanup disabled: {}='{}' is not a percentage 0-100",
                 kAnnotationCleanupThreshold, v);
    return std::nullopt;
  }
  return std::stoi(v);
}

}  // namespace lca::precache
