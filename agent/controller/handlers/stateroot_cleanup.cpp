#include "agent/controller/handlers/stateroot_cleanup.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "agent/controller/handlers/upgrade_handler.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/stateroot_setup.hpp"

namespace lca {
namespace fs = std::filesystem;
namespace sr = stateroot;

void StaterootCleanup::Run(StageContext& ctx) {
  std::error_code ec;
  const fs::path work = work_dir_.empty() ? sr::DefaultWorkDir(ctx.paths.sysroot) : work_dir_;
  fs::remove_all(work, ec);
  if (ec) throw Error(Errc::kIo, "failed to remove " + work.string() + ": " + ec.message());
  if (!fs::exists(ctx.paths.sysroot / "ostree" / "deploy")) return;  // not an ostree host
  const auto booted = sr::FindBooted(ctx.paths.sysroot, ReadFile(proc_cmdline_));
  if (!booted) {
    throw Error(Errc::kInvalid, "cannot tell the booted stateroot (no ostree= in " +
                                    proc_cmdline_.string() + "): refusing to remove stateroots");
  }
  const auto ibu = ctx.Object();
  std::set<std::string> ours;
  if (!ibu.spec.seed_image_ref.version.empty()) {
    ours.insert(sr::StaterootNameForVersion(ibu.spec.seed_image_ref.version));
  }
  const fs::path pinned_file = ctx.paths.state_dir / UpgradeHandler::kPinnedFile;
  std::optional<Json> pinned;
  if (auto data = ReadFileIfExists(pinned_file)) {
    pinned = ParseJson(*data, pinned_file.string());
    ours.insert(pinned->value("stateroot", ""));
  }
  ours.erase("");

  sr::OstreeSysroot sysroot(ctx.paths.sysroot);
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(ctx.paths.sysroot / "ostree" / "deploy")) {
    if (e.is_directory()) dirs.push_back(e.path().filename().string());
  }
  int failed = 0;
  std::string errors;
  for (const auto& name : sr::StaterootsToRemove(sysroot.Deployments(), dirs, booted->stateroot)) {
    if (ours.count(name) == 0) {
      spdlog::info("cleanup: leaving stateroot {} alone (not made or left by this upgrade)", name);
      continue;
    }
    try {
      sysroot.RemoveStateroot(name, booted);
      spdlog::info("cleanup: removed stateroot {}", name);
    } catch (const std::exception& e) {
      ++failed;
      errors += std::string(errors.empty() ? "" : " ") + e.what();
    }
  }
  // The pin protected the rollback target while the upgrade was open; it is closed now.
  if (pinned) {
    for (const auto& d : sysroot.Deployments()) {
      if (d.stateroot == pinned->value("stateroot", "") &&
          d.checksum == pinned->value("checksum", "") && d.serial == pinned->value("serial", -1) &&
          d.pinned) {
        try {
          sysroot.SetPinned(d, false);
          spdlog::info("cleanup: unpinned {} {}.{}", d.stateroot, d.checksum, d.serial);
        } catch (const std::exception& e) {
          ++failed;
          errors += std::string(errors.empty() ? "" : " ") + e.what();
        }
      }
    }
    if (failed == 0) fs::remove(pinned_file, ec);
  }
  sysroot.Prune();
  if (failed > 0) {
    throw Error(Errc::kIo, "failed to remove " + std::to_string(failed) + " stateroots: " + errors);
  }
}

}  // namespace lca
