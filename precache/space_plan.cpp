#include "precache/space_plan.hpp"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "formats/oci_layout.hpp"
#include "precache/registries_conf.hpp"
#include "precache/registry_client.hpp"

namespace lca::precache {
namespace fs = std::filesystem;
namespace {

uint64_t SizeOf(const Json& d) {
  if (d.contains("size") && d["size"].is_number_integer() && d["size"].get<int64_t>() >= 0) {
    return d["size"].get<uint64_t>();
  }
  return 0;
}

// "repo:tag@sha256:x" -> "repo@sha256:x": containers/image refuses a tag beside a digest.
std::string WithoutTagBesideDigest(const std::string& image) {
  const auto at = image.find('@');
  if (at == std::string::npos) return image;
  const std::string name = image.substr(0, at);
  const auto slash = name.rfind('/');
  const auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return name.substr(0, colon) + image.substr(at);
  }
  return image;
}

std::string RepoOf(const std::string& image) {
  const std::string ref = WithoutTagBesideDigest(image);
  const auto at = ref.find('@');
  if (at != std::string::npos) return ref.substr(0, at);
  const auto slash = ref.rfind('/');
  const auto colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return ref.substr(0, colon);
  }
  return ref;
}

ProcessSpec SkopeoRaw(const std::string& ref, const stateroot::RegistryAccess& access) {
  ProcessSpec spec;
  spec.argv = {"skopeo", "inspect"};
  if (access.registries_conf) {
    spec.argv.insert(spec.argv.end(), {"--registries-conf", access.registries_conf->string()});
  }
  spec.argv.insert(spec.argv.end(), {"--raw", "--retry-times", std::to_string(access.retries)});
  if (access.authfile) {
    spec.argv.insert(spec.argv.end(), {"--authfile", access.authfile->string()});
  } else {
    spec.argv.push_back("--no-creds");
  }
  spec.argv.push_back(stateroot::SkopeoReference(ref));
  spec.timeout = access.timeout;
  return spec;
}

}  // namespace

uint64_t ImageLayers::Bytes() const {
  uint64_t total = config_bytes;
  for (uint64_t s : sizes) total += s;
  return total;
}

ImageLayers ParseManifest(const std::string& image, const std::string& manifest_json,
                          const std::string& arch, std::string* platform_digest) {
  const Json m = ParseJson(manifest_json, "manifest of " + image);
  ImageLayers out;
  out.image = image;
  if (m.contains("manifests") && m["manifests"].is_array()) {
    for (const auto& d : m["manifests"]) {
      const Json p = d.value("platform", Json::object());
      if (p.value("os", "") == "linux" && p.value("architecture", "") == arch) {
        if (platform_digest != nullptr) *platform_digest = d.value("digest", "");
        return out;
      }
    }
    throw Error(Errc::kInvalid, image + ": the manifest list has no linux/" + arch + " image");
  }
  if (!m.contains("layers") || !m["layers"].is_array()) {
    throw Error(Errc::kInvalid,
                image + ": the manifest lists no layers (schema 1 or not an image)");
  }
  for (const auto& l : m["layers"]) {
    out.digests.push_back(l.value("digest", ""));
    out.sizes.push_back(SizeOf(l));
  }
  if (m.contains("config") && m["config"].is_object()) out.config_bytes = SizeOf(m["config"]);
  return out;
}

ImageLayers InspectImageLayers(ProcessRunner& runner, const std::string& image,
                               const stateroot::RegistryAccess& access) {
  auto raw = [&](const std::string& ref) {
    const ProcessResult r = runner.Run(SkopeoRaw(ref, access));
    if (!r.ok()) {
      throw Error(r.timed_out ? Errc::kTimeout : Errc::kProcess,
                  "inspecting " + ref + ": " + stateroot::SkopeoFailure(r));
    }
    return r.stdout_data;
  };
  const std::string ref = WithoutTagBesideDigest(image);
  std::string platform;
  ImageLayers out = ParseManifest(image, raw(ref), stateroot::HostOciArchitecture(), &platform);
  if (!platform.empty()) {
    out = ParseManifest(image, raw(RepoOf(image) + "@" + platform),
                        stateroot::HostOciArchitecture(), nullptr);
  }
  return out;
}

std::optional<std::chrono::microseconds> Inspection::SlowestRoundTrip() const {
  if (!every_registry_timed || round_trips.empty()) return std::nullopt;
  std::chrono::microseconds slowest{0};
  for (const auto& [host, t] : round_trips) slowest = std::max(slowest, t);
  return slowest;
}

namespace {

// The client for InspectAll, or none when registries.conf cannot be read exactly (then skopeo,
// which reads it itself, does every image).
std::unique_ptr<RegistryClient> MakeClient(const stateroot::RegistryAccess& access) {
  try {
    RegistryClientOptions o;
    o.authfile = access.authfile;
    o.request_timeout = std::min<std::chrono::milliseconds>(access.timeout, o.request_timeout);
    return std::make_unique<RegistryClient>(LoadRegistriesConf(access.registries_conf), o);
  } catch (const std::exception& e) {
    spdlog::info("precache: reading manifests with skopeo only: {}", e.what());
    return nullptr;
  }
}

ImageLayers ReadInProcess(RegistryClient& client, const std::string& image) {
  const auto ref = ParseImageRef(image);
  if (!ref) throw Error(Errc::kInvalid, image + ": not a reference the client reads");
  std::string platform;
  const std::string arch = stateroot::HostOciArchitecture();
  ImageLayers out =
      ParseManifest(image, client.GetManifest(*ref, ref->Reference()), arch, &platform);
  if (!platform.empty()) {
    out = ParseManifest(image, client.GetManifest(*ref, platform), arch, nullptr);
  }
  return out;
}

}  // namespace

Inspection InspectAll(ProcessRunner& runner, const std::vector<std::string>& images,
                      const stateroot::RegistryAccess& access, size_t window, bool in_process) {
  Inspection out;
  out.layers.resize(images.size());
  std::unique_ptr<RegistryClient> client;
  if (in_process && !images.empty()) client = MakeClient(access);
  std::mutex mu;
  size_t next = 0;
  auto worker = [&] {
    while (true) {
      size_t i;
      {
        std::lock_guard lock(mu);
        if (next == images.size()) return;
        i = next++;
      }
      if (client && client->Handles(images[i])) {
        try {
          out.layers[i] = ReadInProcess(*client, images[i]);
          std::lock_guard lock(mu);
          ++out.in_process;
          continue;
        } catch (const std::exception& e) {
          // skopeo has the last word: it knows every case the client leaves out, and its
          // error is the one operators know.
          spdlog::debug("precache: {}; asking skopeo", e.what());
        }
      }
      try {
        out.layers[i] = InspectImageLayers(runner, images[i], access);
        std::lock_guard lock(mu);
        ++out.by_skopeo;
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        ++out.by_skopeo;
        out.layers[i].image = images[i];
        out.errors.push_back(e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min(std::max<size_t>(window, 1), images.size());
  for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (client) out.round_trips = client->RoundTrips();
  out.every_registry_timed = client != nullptr;
  for (const auto& image : images) {
    const auto ref = ParseImageRef(image);
    if (!ref || out.round_trips.count(RegistryClient::ApiHost(ref->registry)) == 0) {
      out.every_registry_timed = false;
    }
  }
  return out;
}

std::set<std::string> LocalLayerDigests(const fs::path& root) {
  std::set<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 7 || name.substr(name.size() - 7) != "-layers") continue;
    try {
      const auto text = ReadFileIfExists(e.path() / "layers.json");
      if (!text) continue;
      const Json j = ParseJson(*text, (e.path() / "layers.json").string());
      if (!j.is_array()) continue;
      for (const auto& l : j) {
        if (l.contains("compressed-diff-digest") && l["compressed-diff-digest"].is_string()) {
          out.insert(l["compressed-diff-digest"].get<std::string>());
        }
        if (l.contains("diff-digest") && l["diff-digest"].is_string()) {
          out.insert(l["diff-digest"].get<std::string>());  // uncompressed layers
        }
      }
    } catch (const std::exception&) {
      // An internal file we only read for an estimate: unreadable means "assume nothing".
    }
  }
  return out;
}

FsUsage StatFs(const fs::path& path) {
  fs::path p = path;
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec) && p != p.root_path()) p = p.parent_path();
  if (p.empty()) p = ".";
  struct statvfs st {};
  if (::statvfs(p.c_str(), &st) != 0) throw SystemError("statfs " + p.string(), errno);
  FsUsage u;
  u.size_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  u.used_bytes = static_cast<uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
  u.available_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  return u;
}

uint64_t AvailableBelowThreshold(const FsUsage& fs, int high) {
  if (high <= 0 || high >= 100) high = 85;
  const long double limit = static_cast<long double>(fs.size_bytes) * high / 100.0L;
  const long double avail = limit - static_cast<long double>(fs.used_bytes);
  return avail <= 0 ? 0 : static_cast<uint64_t>(avail);
}

std::string Bytes(uint64_t n) { return FormatBytes(n); }

std::string SpacePlan::Describe() const {
  char exp[16];
  std::snprintf(exp, sizeof exp, "%.1f", expansion);
  std::string need = "need " + Bytes(needed_bytes) + " (" + std::to_string(images) + " images, " +
                     Bytes(download_bytes) + " to download x " + exp;
  if (floor_bytes > 0) need += ", spaceRequired " + Bytes(floor_bytes);
  need += ")";
  return need + " but only " + Bytes(available_bytes) + " is available below the " +
         std::to_string(high_threshold_percent) + "% image GC threshold on " + where.string() +
         " (size " + Bytes(fs.size_bytes) + ", used " + Bytes(fs.used_bytes) + ")";
}

SpacePlan PlanSpace(const std::vector<ImageLayers>& missing, const std::set<std::string>& local,
                    double expansion, uint64_t floor_bytes, int high, const FsUsage& fs,
                    const fs::path& where) {
  SpacePlan p;
  p.images = missing.size();
  p.expansion = expansion;
  p.floor_bytes = floor_bytes;
  p.high_threshold_percent = (high <= 0 || high >= 100) ? 85 : high;
  p.fs = fs;
  p.where = where;
  std::set<std::string> counted;
  for (const auto& img : missing) {
    p.download_bytes += img.config_bytes;
    for (size_t i = 0; i < img.digests.size(); ++i) {
      if (local.count(img.digests[i]) > 0) continue;
      if (!counted.insert(img.digests[i]).second) continue;
      p.download_bytes += i < img.sizes.size() ? img.sizes[i] : 0;
    }
  }
  p.needed_bytes =
      static_cast<uint64_t>(std::ceil(static_cast<double>(p.download_bytes) * expansion));
  p.needed_bytes = std::max(p.needed_bytes, floor_bytes);
  p.available_bytes = AvailableBelowThreshold(fs, p.high_threshold_percent);
  return p;
}

void RequireSpace(const SpacePlan& plan) {
  if (!plan.fits())
    throw Error(Errc::kInvalid, "not enough space for precaching: " + plan.Describe());
}

std::vector<PullItem> ToPullItems(const std::vector<std::string>& images,
                                  const std::vector<ImageLayers>& layers) {
  std::map<std::string, const ImageLayers*> by;
  for (const auto& l : layers) by[l.image] = &l;
  std::vector<PullItem> out;
  for (const auto& img : images) {
    PullItem it;
    it.image = img;
    if (auto f = by.find(img); f != by.end()) {
      it.layers = f->second->digests;
      it.layer_sizes = f->second->sizes;
      it.bytes = f->second->Bytes();
    }
    out.push_back(std::move(it));
  }
  return out;
}

}  // namespace lca::precache
