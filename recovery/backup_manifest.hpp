#pragma once
// manifest.json of a backup: what was backed up, from which deployment, and the size and
// sha256 of every artifact and of every file of the copied trees. Written last, so a backup
// without one is incomplete; read before a restore, so a damaged backup is refused before
// anything on the host is touched, and after each restore step, to verify the host trees.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "recovery/tree_manifest.hpp"

namespace lca::recovery {

struct ArtifactRecord {
  std::string path;  // relative to the backup directory
  std::uint64_t size = 0;
  std::string sha256;  // "sha256:<hex>"
};

struct BackupManifest {
  static constexpr int kFormatVersion = 1;
  std::string created_at;
  std::string stateroot, checksum;  // the deployment that was booted and pinned
  int serial = 0;
  std::string etcd_snapshot;  // artifact paths
  std::string static_pods;
  std::vector<std::string> static_pod_dirs;  // e.g. etcd-pod-7
  std::vector<std::string> extras;           // host paths inside extras.tgz
  std::vector<ArtifactRecord> artifacts;
  // "etc", "local", "kubelet" -> the copy's entries; sources are /etc, /usr/local,
  // /var/lib/kubelet.
  std::map<std::string, std::vector<TreeEntry>> trees;
};

Json ManifestToJson(const BackupManifest& m);
// kInvalid naming the file and the field.
BackupManifest ManifestFromJson(const Json& j, const std::string& what);

// The record of one file in the backup directory.
ArtifactRecord RecordArtifact(const std::filesystem::path& dir, const std::string& rel);

// Reads <dir>/manifest.json after checking TALM's required content (cluster/, etc/, local/,
// kubelet/): a missing piece is kNotFound "Required backup content not found in <dir>: ...".
BackupManifest LoadBackup(const std::filesystem::path& dir);

// Every artifact's size and sha256, and every copied tree against its entries: kInvalid
// "backup <dir> is damaged: <path>: sha256 mismatch (...)" naming what differs.
void VerifyBackup(const std::filesystem::path& dir, const BackupManifest& m);

}  // namespace lca::recovery
