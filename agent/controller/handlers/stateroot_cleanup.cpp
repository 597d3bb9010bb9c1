#include "agent/controller/handlers/stateroot_cleanup.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "agent/controller/host_view.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/stateroot_setup.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

// Failures collected over the whole step: each removal is tried.
struct Failures {
  int count = 0;
  std::string text;
  void Add(const std::exception& e) {
    ++count;
    text += std::string(text.empty() ? "" : " ") + e.what();
  }
};

std::vector<std::string> StaterootDirs(const fs::path& sysroot) {
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(sysroot / "ostree" / "deploy")) {
    if (e.is_directory()) dirs.push_back(e.path().filename().string());
  }
  return dirs;
}

void RemoveOurs(HostView& host, const std::set<std::string>& ours, Failures& failed) {
  const auto& booted = host.booted();
  auto& sysroot = host.sysroot();
  for (const auto& name : sr::StaterootsToRemove(
           sysroot.Deployments(), StaterootDirs(host.sysroot_path()), booted->stateroot)) {
    if (ours.count(name) == 0) {
      spdlog::info("cleanup: leaving stateroot {} alone (not made or left by this upgrade)", name);
      continue;
    }
    try {
      sysroot.RemoveStateroot(name, booted);
      spdlog::info("cleanup: removed stateroot {}", name);
    } catch (const std::exception& e) {
      failed.Add(e);
    }
  }
}

// The pin protected the rollback target while the upgrade was open; it is closed now.
void Unpin(sr::OstreeSysroot& sysroot, const Json& pinned, Failures& failed) {
  for (const auto& d : sysroot.Deployments()) {
    if (d.stateroot == pinned.value("stateroot", "") &&
        d.checksum == pinned.value("checksum", "") && d.serial == pinned.value("serial", -1) &&
        d.pinned) {
      try {
        sysroot.SetPinned(d, false);
        spdlog::info("cleanup: unpinned {} {}.{}", d.stateroot, d.checksum, d.serial);
      } catch (const std::exception& e) {
        failed.Add(e);
      }
    }
  }
}

}  // namespace

void RemoveUpgradeStateroots(CleanupRun& c) {
  StageContext& ctx = c.ctx;
  std::error_code ec;
  const fs::path work =
      c.opts.work_dir.empty() ? sr::DefaultWorkDir(ctx.paths.sysroot) : c.opts.work_dir;
  fs::remove_all(work, ec);
  if (ec) throw Error(Errc::kIo, "failed to remove " + work.string() + ": " + ec.message());
  if (!fs::exists(ctx.paths.sysroot / "ostree" / "deploy")) return;  // not an ostree host
  HostView& host = ctx.Host();
  if (!host.booted()) {
    throw Error(Errc::kInvalid, "cannot tell the booted stateroot (no ostree= in " +
                                    host.proc_cmdline().string() +
                                    "): refusing to remove stateroots");
  }
  std::set<std::string> ours{host.target()};
  const fs::path pinned_file = ctx.paths.state_dir / state_layout::kPinned;
  std::optional<Json> pinned;
  if (auto data = ReadFileIfExists(pinned_file)) {
    pinned = ParseJson(*data, pinned_file.string());
    ours.insert(pinned->value("stateroot", ""));
  }
  ours.erase("");
  Failures failed;
  RemoveOurs(host, ours, failed);
  if (pinned) {
    Unpin(host.sysroot(), *pinned, failed);
    if (failed.count == 0) fs::remove(pinned_file, ec);
  }
  host.sysroot().Prune();
  if (failed.count > 0) {
    throw Error(Errc::kIo,
                "failed to remove " + std::to_string(failed.count) + " stateroots: " + failed.text);
  }
}

}  // namespace lca
