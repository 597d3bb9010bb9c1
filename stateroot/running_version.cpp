#include "stateroot/running_version.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cctype>
#include <regex>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "stateroot/seed_format.hpp"

namespace lca::stateroot {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFix =
    "set runningVersion in /etc/lca/lifecycle-agent.yaml (or --running-version) to the "
    "OpenShift version this node runs, e.g. 4.16.3";

Error Invalid(const std::string& msg) { return Error(Errc::kInvalid, msg); }

// A version CompareVersions can read: "4.16", "4.16.3", "4.16.0-rc.1".
bool Comparable(std::string_view v) {
  try {
    CompareVersions(v, v);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::pair<unsigned long, unsigned long> MajorMinor(std::string_view v) {
  static const std::regex re(R"(^v?(\d+)\.(\d+)(?:[.\-+].*)?$)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(v.begin(), v.end(), m, re)) {
    throw Invalid("'" + std::string(v) + "' is not a version like 4.16 or 4.16.3");
  }
  return {std::stoul(m[1].str()), std::stoul(m[2].str())};
}

bool IsRegular(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::optional<std::string> ReadDeploymentOsRelease(const fs::path& deployment) {
  for (const char* rel : {"etc/os-release", "usr/lib/os-release"}) {
    const fs::path p = deployment / rel;
    // The deployment's own file only: RHCOS's etc/os-release is a symlink to
    // ../usr/lib/os-release, which the second candidate reads directly.
    if (IsRegular(p)) return ReadFile(p);
  }
  return std::nullopt;
}

std::optional<std::string> OsReleaseValue(std::string_view text, std::string_view key) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != '=') {
      continue;
    }
    std::string v(line.substr(key.size() + 1));
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    if (v.empty()) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

bool IsRhcosBuildId(std::string_view version) {
  // <major><minor>.<rhel>.<YYYYMMDDhhmm>-<n>, e.g. 416.94.202405291527-0.
  static const std::regex re(R"(^\d{3,}\.\d+\.\d{12}-\d+$)");
  return std::regex_match(version.begin(), version.end(), re);
}

RunningVersion ResolveRunningVersion(const RunningVersionInputs& in) {
  auto usable = [](const std::string& v, const std::string& source) {
    if (!Comparable(v)) {
      throw Invalid("the running version '" + v + "' from " + source +
                    " is not a version the seed's can be compared with: " + kFix);
    }
    return RunningVersion{v, false, source};
  };
  if (in.cluster_version) {
    if (auto v = in.cluster_version(); v && !v->empty()) {
      return usable(*v, "ClusterVersion version");
    }
  }
  if (in.setting && !in.setting->empty()) return usable(*in.setting, "runningVersion");
  if (const auto text = ReadDeploymentOsRelease(in.booted_deployment)) {
    if (auto v = OsReleaseValue(*text, "OPENSHIFT_VERSION")) {
      try {
        MajorMinor(*v);
      } catch (const Error&) {
        throw Invalid("OPENSHIFT_VERSION '" + *v +
                      "' in the booted deployment's os-release is not a version: " + kFix);
      }
      return RunningVersion{*v, true, "OPENSHIFT_VERSION in the booted deployment's os-release"};
    }
  }
  if (in.commit_version.empty()) {
    throw Invalid(
        "the running OpenShift version is unknown (no OPENSHIFT_VERSION in the booted "
        "deployment's os-release, no version metadata on the booted commit): " +
        std::string(kFix));
  }
  if (IsRhcosBuildId(in.commit_version)) {
    throw Invalid("the booted commit's version " + in.commit_version +
                  " is an RHCOS build id, not an OpenShift version, and the booted deployment's "
                  "os-release has no OPENSHIFT_VERSION: " +
                  kFix);
  }
  return usable(in.commit_version, "the booted commit's version metadata");
}

void CheckSeedIsNewer(std::string_view seed, const RunningVersion& running) {
  if (!running.major_minor_only) {
    CheckSeedVersionIsNewer(seed, running.version);
    return;
  }
  const auto s = MajorMinor(seed);
  const auto r = MajorMinor(running.version);
  if (s > r) return;
  if (s < r) CheckSeedVersionIsNewer(seed, running.version);  // throws the reference's message
  throw Invalid("seed OCP version (" + std::string(seed) + ") and the running release (" +
                running.version + ", from " + running.source +
                ") are the same minor release, and major.minor cannot say which is newer: " + kFix);
}

}  // namespace lca::stateroot
