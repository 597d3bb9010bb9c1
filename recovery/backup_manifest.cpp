#include "recovery/backup_manifest.hpp"

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "formats/oci_layout.hpp"
#include "recovery/layout.hpp"

namespace lca::recovery {

namespace fs = std::filesystem;

Json ManifestToJson(const BackupManifest& m) {
  Json j = {
      {"formatVersion", BackupManifest::kFormatVersion},
      {"createdAt", m.created_at},
      {"deployment", {{"stateroot", m.stateroot}, {"checksum", m.checksum}, {"serial", m.serial}}},
      {"etcdSnapshot", m.etcd_snapshot},
      {"staticPods", m.static_pods},
      {"staticPodDirs", m.static_pod_dirs},
      {"extras", m.extras}};
  Json arts = Json::array();
  for (const auto& a : m.artifacts) {
    arts.push_back({{"path", a.path}, {"size", a.size}, {"sha256", a.sha256}});
  }
  j["artifacts"] = arts;
  Json trees = Json::object();
  for (const auto& [name, entries] : m.trees) trees[name] = TreeToJson(entries);
  j["trees"] = trees;
  return j;
}

BackupManifest ManifestFromJson(const Json& j, const std::string& what) {
  BackupManifest m;
  std::string field;
  try {
    field = "formatVersion";
    if (j.at(field).get<int>() != BackupManifest::kFormatVersion) {
      throw Error(Errc::kInvalid, "unsupported value " + j.at(field).dump());
    }
    field = "createdAt";
    m.created_at = j.value(field, std::string());
    field = "deployment";
    m.stateroot = j.at(field).value("stateroot", std::string());
    m.checksum = j.at(field).value("checksum", std::string());
    m.serial = j.at(field).value("serial", 0);
    field = "etcdSnapshot";
    m.etcd_snapshot = j.at(field).get<std::string>();
    field = "staticPods";
    m.static_pods = j.at(field).get<std::string>();
    field = "staticPodDirs";
    m.static_pod_dirs = j.at(field).get<std::vector<std::string>>();
    field = "extras";
    m.extras = j.at(field).get<std::vector<std::string>>();
    field = "artifacts";
    for (const auto& a : j.at(field)) {
      m.artifacts.push_back({a.at("path").get<std::string>(), a.at("size").get<std::uint64_t>(),
                             a.at("sha256").get<std::string>()});
    }
  } catch (const std::exception& e) {
    throw Error(Errc::kInvalid, what + ": field \"" + field + "\": " + e.what());
  }
  if (!j.contains("trees") || !j["trees"].is_object()) {
    throw Error(Errc::kInvalid, what + ": field \"trees\" is missing or not an object");
  }
  for (const std::string_view name : {layout::kEtc, layout::kLocal, layout::kKubelet}) {
    const std::string n(name);
    if (!j["trees"].contains(n)) {
      throw Error(Errc::kInvalid, what + ": field \"trees." + n + "\" is missing");
    }
    m.trees[n] = TreeFromJson(j["trees"][n], what + ": trees." + n);
  }
  for (const auto& a : m.artifacts) {
    if (a.path.empty() || a.path.front() == '/' || a.path.find("..") != std::string::npos) {
      throw Error(Errc::kInvalid,
                  what + ": artifact path \"" + a.path + "\" is not inside the backup");
    }
  }
  return m;
}

ArtifactRecord RecordArtifact(const fs::path& dir, const std::string& rel) {
  const fs::path p = dir / rel;
  return {rel, fs::file_size(p), stateroot::Sha256File(p)};
}

BackupManifest LoadBackup(const fs::path& dir) {
  std::vector<std::string> missing;
  std::error_code ec;
  for (const std::string_view d :
       {layout::kCluster, layout::kEtc, layout::kLocal, layout::kKubelet}) {
    if (!fs::is_directory(dir / d, ec)) missing.push_back(std::string(d) + "/");
  }
  if (!fs::is_regular_file(dir / layout::kManifest, ec)) missing.emplace_back(layout::kManifest);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw Error(Errc::kNotFound,
                "Required backup content not found in " + dir.string() + ": missing " + list +
                    " (take a backup first: lcactl recovery backup --dir " + dir.string() + ")");
  }
  const fs::path file = dir / layout::kManifest;
  return ManifestFromJson(ParseJson(ReadFile(file), file.string()), file.string());
}

void VerifyBackup(const fs::path& dir, const BackupManifest& m) {
  const std::string where = "backup " + dir.string() + " is damaged: ";
  auto artifact = [&](const std::string& rel) -> const ArtifactRecord* {
    for (const auto& a : m.artifacts) {
      if (a.path == rel) return &a;
    }
    return nullptr;
  };
  for (const auto& need : {m.etcd_snapshot, m.static_pods}) {
    if (artifact(need) == nullptr) {
      throw Error(Errc::kInvalid, where + need + " is named in manifest.json but has no record");
    }
  }
  for (const auto& a : m.artifacts) {
    const fs::path p = dir / a.path;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) throw Error(Errc::kInvalid, where + a.path + ": missing");
    const auto size = fs::file_size(p, ec);
    if (size != a.size) {
      throw Error(Errc::kInvalid, where + a.path + ": size " + std::to_string(size) +
                                      ", manifest.json says " + std::to_string(a.size));
    }
    const std::string got = stateroot::Sha256File(p);
    if (got != a.sha256) {
      throw Error(Errc::kInvalid, where + a.path + ": sha256 mismatch (" + got +
                                      ", manifest.json says " + a.sha256 + ")");
    }
  }
  for (const auto& [name, entries] : m.trees) {
    const auto diffs = CompareTrees(entries, ScanTree(dir / name));
    if (!diffs.empty()) {
      std::string text;
      for (const auto& d : diffs) text += "\n  " + name + "/" + d;
      throw Error(Errc::kInvalid,
                  where + "the copy of " + name + "/ differs from manifest.json:" + text);
    }
  }
}

}  // namespace lca::recovery
