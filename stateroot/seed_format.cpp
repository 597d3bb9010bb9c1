#include "stateroot/seed_format.hpp"

#include <algorithm>
#include <cctype>

#include "common/error.hpp"

namespace lca::stateroot {
namespace {

Error Invalid(const std::string& msg) { return Error(Errc::kInvalid, msg); }

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

struct Semver {
  std::vector<unsigned long long> core;
  std::vector<std::string> pre;
};

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(sep, start);
    out.emplace_back(
        s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

Semver ParseSemver(std::string_view text) {
  std::string_view v = text;
  if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
  if (auto plus = v.find('+'); plus != std::string_view::npos) v = v.substr(0, plus);
  Semver s;
  std::string_view core = v;
  if (auto dash = v.find('-'); dash != std::string_view::npos) {
    core = v.substr(0, dash);
    s.pre = Split(v.substr(dash + 1), '.');
  }
  for (const auto& part : Split(core, '.')) {
    if (!AllDigits(part)) {
      throw Invalid("'" + std::string(text) + "' is not a version like 4.15.2 or 4.16.0-rc.1");
    }
    s.core.push_back(std::stoull(part));
  }
  if (s.core.empty() || s.core.size() > 3) {
    throw Invalid("'" + std::string(text) + "' is not a version like 4.15.2 or 4.16.0-rc.1");
  }
  s.core.resize(3, 0);
  return s;
}

}  // namespace

bool seedfile::IsOrigin(std::string_view name) {
  return name.size() > 14 && name.substr(0, 7) == "ostree-" &&
         name.substr(name.size() - 7) == ".origin";
}

SeedClusterInfo ParseSeedClusterInfo(const Json& j, std::string_view what) {
  if (!j.is_object()) throw Invalid(std::string(what) + ": must be a JSON object");
  SeedClusterInfo info;
  auto str = [&](const char* key) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return {};
    if (!j[key].is_string()) throw Invalid(std::string(what) + ": " + key + " must be a string");
    return j[key].get<std::string>();
  };
  auto boolean = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (!j[key].is_boolean()) throw Invalid(std::string(what) + ": " + key + " must be a boolean");
    return j[key].get<bool>();
  };
  info.seed_cluster_ocp_version = str("seed_cluster_ocp_version");
  info.release_registry = str("release_registry");
  info.container_storage_mountpoint_target = str("container_storage_mountpoint_target");
  info.recert_image_pull_spec = str("recert_image_pull_spec");
  info.has_proxy = boolean("has_proxy");
  info.has_fips = boolean("has_fips");
  info.mirror_registry_configured = boolean("mirror_registry_configured");
  info.raw = j;
  return info;
}

std::optional<SeedClusterInfo> ValidateSeedLabels(const Json& labels) {
  const std::string fmt_key(kSeedFormatVersionLabel);
  if (!labels.is_object() || !labels.contains(fmt_key)) {
    throw Invalid("failed to find seed format version label " + fmt_key +
                  " in seed image: please build a new image using the latest version of the "
                  "lca-cli");
  }
  const std::string got =
      labels[fmt_key].is_string() ? labels[fmt_key].get<std::string>() : labels[fmt_key].dump();
  if (got != kSeedFormatVersion) {
    throw Invalid("seed image format version mismatch: expected " +
                  std::string(kSeedFormatVersion) + ", got " + got);
  }
  const std::string info_key(kSeedClusterInfoLabel);
  if (!labels.contains(info_key)) return std::nullopt;
  if (!labels[info_key].is_string())
    throw Invalid("seed image label " + info_key + " must be a string");
  return ParseSeedClusterInfo(ParseJson(labels[info_key].get<std::string>(), "label " + info_key),
                              "label " + info_key);
}

int CompareVersions(std::string_view a, std::string_view b) {
  const Semver x = ParseSemver(a), y = ParseSemver(b);
  for (size_t i = 0; i < 3; ++i) {
    if (x.core[i] != y.core[i]) return x.core[i] < y.core[i] ? -1 : 1;
  }
  if (x.pre.empty() || y.pre.empty()) {
    if (x.pre.empty() && y.pre.empty()) return 0;
    return x.pre.empty() ? 1 : -1;  // a release is newer than its prereleases
  }
  for (size_t i = 0; i < std::min(x.pre.size(), y.pre.size()); ++i) {
    const bool xn = AllDigits(x.pre[i]), yn = AllDigits(y.pre[i]);
    if (xn && yn) {
      const auto xv = std::stoull(x.pre[i]), yv = std::stoull(y.pre[i]);
      if (xv != yv) return xv < yv ? -1 : 1;
    } else if (xn != yn) {
      return xn ? -1 : 1;  // numeric identifiers sort first
    } else if (x.pre[i] != y.pre[i]) {
      return x.pre[i] < y.pre[i] ? -1 : 1;
    }
  }
  if (x.pre.size() == y.pre.size()) return 0;
  return x.pre.size() < y.pre.size() ? -1 : 1;
}

void CheckSeedVersionIsNewer(std::string_view seed, std::string_view running) {
  if (CompareVersions(seed, running) <= 0) {
    throw Invalid("seed OCP version (" + std::string(seed) +
                  ") must be higher than current OCP version (" + std::string(running) + ")");
  }
}

void CheckSeedVersionMatchesSpec(std::string_view seed, std::string_view spec) {
  if (seed != spec) {
    throw Invalid("version specified in seed image (" + std::string(seed) +
                  ") differs from version in spec (" + std::string(spec) + ")");
  }
}

SeedDeployment ParseDeploymentId(std::string_view id) {
  const auto dash = id.rfind('-');
  if (dash == std::string_view::npos || dash + 1 >= id.size()) {
    throw Invalid("failed to get deployment from deployment id '" + std::string(id) +
                  "': expected <stateroot>-<checksum>.<serial>");
  }
  SeedDeployment d;
  d.id = std::string(id);
  d.deployment = std::string(id.substr(dash + 1));
  d.checksum = d.deployment.substr(0, d.deployment.find('.'));
  if (d.checksum.size() != 64 || !std::all_of(d.checksum.begin(), d.checksum.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    throw Invalid("deployment id '" + std::string(id) +
                  "' does not hold a 64-hex-digit commit checksum");
  }
  return d;
}

SeedDeployment SeedBootedDeployment(const Json& status) {
  if (!status.is_object() || !status.contains("deployments") || !status["deployments"].is_array()) {
    throw Invalid("rpm-ostree.json: no deployments list");
  }
  for (const auto& d : status["deployments"]) {
    if (d.is_object() && d.value("booted", false)) {
      if (!d.contains("id") || !d["id"].is_string())
        throw Invalid("rpm-ostree.json: booted deployment has no id");
      return ParseDeploymentId(d["id"].get<std::string>());
    }
  }
  throw Invalid("rpm-ostree.json: no booted deployment");
}

std::vector<std::string> SeedKernelArgs(const Json& mc, std::string_view version) {
  std::vector<std::string> kargs;
  const Json spec = mc.is_object() ? mc.value("spec", Json::object()) : Json::object();
  if (spec.contains("kernelArguments") && spec["kernelArguments"].is_array()) {
    for (const auto& k : spec["kernelArguments"]) {
      if (!k.is_string())
        throw Invalid("mco-currentconfig.json: spec.kernelArguments must be strings");
      kargs.push_back(k.get<std::string>());
    }
  }
  if (spec.value("fips", false)) {
    kargs.emplace_back("fips=1");
    kargs.emplace_back("boot=LABEL=boot");
  }
  kargs.push_back("ibu=" + std::string(version));
  return kargs;
}

std::vector<std::string> ParseEtcDeletions(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& raw : Split(text, '\n')) {
    const std::string line = Trim(raw);
    if (line.empty()) continue;
    if (line.rfind("/etc/", 0) != 0) {
      throw Invalid("etc.deletions: '" + line + "' is not a path under /etc");
    }
    for (const auto& comp : Split(line, '/')) {
      if (comp == "..") throw Invalid("etc.deletions: '" + line + "' contains '..'");
    }
    out.push_back(line.substr(1));
  }
  return out;
}

Json AutoRollbackConfig(int64_t timeout, bool init_monitor_disabled, bool post_reboot_disabled) {
  Json j = Json::object();
  // monitor_enabled is omitted when false, as the Go writer's omitempty does.
  if (!init_monitor_disabled) j["monitor_enabled"] = true;
  j["monitor_timeout"] = timeout > 0 ? timeout : 1800;
  j["enabled_components"] =
      Json{{"config", !post_reboot_disabled}, {"postpivot", !post_reboot_disabled}};
  return j;
}

}  // namespace lca::stateroot
