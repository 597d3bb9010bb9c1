#include "recovery/etcd.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "recovery/tree_sync.hpp"

namespace lca::recovery {

namespace fs = std::filesystem;

namespace {

std::string Join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : std::string(1, sep)) + s;
  return out;
}

ProcessSpec EtcdctlSpec(const EtcdConfig& cfg, std::vector<std::string> args) {
  std::vector<std::string> argv = {cfg.etcdctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return ProcessSpec{.argv = std::move(argv),
                     .env = {{"ETCDCTL_API", "3"}},
                     .timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout)};
}

}  // namespace

void EtcdSnapshotSave(const EtcdConfig& cfg, ProcessRunner& runner, const fs::path& file) {
  std::vector<std::string> args = {"--endpoints=" + Join(cfg.endpoints, ',')};
  if (!cfg.cacert.empty()) args.push_back("--cacert=" + cfg.cacert);
  if (!cfg.cert.empty()) args.push_back("--cert=" + cfg.cert);
  if (!cfg.key.empty()) args.push_back("--key=" + cfg.key);
  args.insert(args.end(), {"snapshot", "save", file.string()});
  WithContext("etcd snapshot", [&] { RunChecked(runner, EtcdctlSpec(cfg, args)); });
  std::error_code ec;
  if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) == 0) {
    throw Error(Errc::kProcess,
                "etcd snapshot: etcdctl exited 0 but wrote no snapshot at " + file.string());
  }
}

void EtcdRestoreDataDir(const EtcdConfig& cfg, ProcessRunner& runner, const fs::path& snapshot,
                        const fs::path& data_dir, const fs::path& aside_dir) {
  const fs::path scratch = data_dir.string() + ".restore";
  RemoveAll(scratch);
  std::vector<std::string> args = {"snapshot", "restore", snapshot.string(), "--data-dir",
                                   scratch.string()};
  if (!cfg.name.empty()) args.push_back("--name=" + cfg.name);
  if (!cfg.peer_url.empty()) {
    const std::string name = cfg.name.empty() ? "default" : cfg.name;
    args.push_back("--initial-cluster=" + name + "=" + cfg.peer_url);
    args.push_back("--initial-advertise-peer-urls=" + cfg.peer_url);
  }
  WithContext("etcd snapshot restore", [&] { RunChecked(runner, EtcdctlSpec(cfg, args)); });

  EnsureDir(data_dir, 0700);
  const fs::path member = data_dir / "member";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(member, ec))) {
    if (!fs::exists(fs::symlink_status(aside_dir / "member", ec))) {
      EnsureDir(aside_dir, 0700);
      fs::rename(member, aside_dir / "member", ec);
      if (ec) throw SystemError("moving " + member.string() + " aside", ec.value());
      FsyncDir(aside_dir);
      spdlog::info("the etcd data replaced by the restore is kept in {}",
                   (aside_dir / "member").string());
    } else {
      RemoveAll(member);  // a retry: the original is already aside
    }
  }
  fs::rename(scratch / "member", member, ec);
  if (ec)
    throw SystemError("moving the restored etcd member into " + data_dir.string(), ec.value());
  FsyncDir(data_dir);
  RemoveAll(scratch);
}

}  // namespace lca::recovery
