#pragma once
// etcd through etcdctl (v3 API): a snapshot of the running cluster at backup time, and a new
// member data directory from that snapshot at restore time.
#include <filesystem>

#include "common/process.hpp"
#include "recovery/host.hpp"

namespace lca::recovery {

// `etcdctl snapshot save <file>` against cfg.endpoints (TLS files when given). etcdctl writes to
// <file>.part and renames, so a failed save leaves no file under the final name.
void EtcdSnapshotSave(const EtcdConfig& cfg, ProcessRunner& runner,
                      const std::filesystem::path& file);

// Replaces <data_dir>/member with one restored from `snapshot`: etcdctl restores into
// <data_dir>.restore (scratch), the current member directory is moved to
// <aside_dir>/member (only the first time: a retried restore keeps the original there), and the
// restored one is renamed in. Idempotent: running it again converges to the same data.
void EtcdRestoreDataDir(const EtcdConfig& cfg, ProcessRunner& runner,
                        const std::filesystem::path& snapshot,
                        const std::filesystem::path& data_dir,
                        const std::filesystem::path& aside_dir);

}  // namespace lca::recovery
