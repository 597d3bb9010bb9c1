#include "agent/pivot/auto_rollback.hpp"

#include <spdlog/spdlog.h>

#include "agent/api/conditions.hpp"
#include "agent/api/ibu.hpp"
#include "agent/pivot/host_paths.hpp"
#include "agent/pivot/reboot.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"
#include "stateroot/ostree_sysroot.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;

std::optional<AutoRollbackSettings> ReadAutoRollbackConfig(const fs::path& file) {
  const auto data = ReadFileIfExists(file);
  if (!data) return std::nullopt;
  return WithContext("reading " + file.string(), [&] {
    const Json j = ParseJson(*data, file.filename().string());
    if (!j.is_object()) throw Error(Errc::kInvalid, "not a JSON object");
    AutoRollbackSettings s;
    if (j.contains("monitor_enabled")) s.monitor_enabled = j.at("monitor_enabled").get<bool>();
    if (j.contains("monitor_timeout")) s.monitor_timeout = j.at("monitor_timeout").get<int64_t>();
    if (j.contains("enabled_components")) {
      const Json& c = j.at("enabled_components");
      s.config_enabled = c.value("config", false);
      s.postpivot_enabled = c.value("postpivot", false);
    }
    return s;
  });
}

std::string GoDuration(int64_t seconds) {
  if (seconds <= 0) return "0s";
  const int64_t h = seconds / 3600, m = (seconds % 3600) / 60, s = seconds % 60;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s) + "s";
  return out;
}

void InitiateRollback(ProcessRunner& runner, const RollbackRequest& req) {
  spdlog::warn("initiating automatic rollback: {}", req.message);
  const auto booted = stateroot::FindBooted(req.sysroot, req.proc_cmdline);
  if (!booted) {
    throw Error(Errc::kInvalid,
                "automatic rollback: cannot tell the booted deployment (no ostree= "
                "on the kernel command line)");
  }
  stateroot::OstreeSysroot sysroot(req.sysroot);
  const auto target = stateroot::RollbackTarget(sysroot.Deployments(), *booted);
  if (!target) {
    throw Error(Errc::kNotFound,
                "automatic rollback: no deployment of another stateroot to roll "
                "back to");
  }
  // The old stateroot's record first: once it is the default, a reboot at any moment must find
  // the failure recorded there.
  const fs::path old_state = StaterootStateDir(req.sysroot, target->stateroot);
  const fs::path old_object = old_state / kObjectFile;
  WithContext("automatic rollback: recording the failure in " + old_object.string(), [&] {
    auto data = ReadFileIfExists(old_object);
    if (!data) data = ReadFileIfExists(req.booted_state_dir / kObjectFile);
    if (!data) throw Error(Errc::kNotFound, "no ImageBasedUpgrade record to update");
    auto ibu = api::FromJson(ParseJson(*data, "ibu.json"));
    if (!ibu.status) ibu.status = api::Status{};
    api::ConditionWriter(*ibu.status, ibu.metadata.generation, Now()).UpgradeFailed(req.message);
    EnsureDir(old_state, 0700);
    WriteFileAtomic(old_object, ToPrettyJson(api::ToJson(ibu)), 0600);
  });
  WithContext("automatic rollback: making " + target->stateroot + " the default",
              [&] { sysroot.SetDefault(*target); });
  RequestReboot(runner, req.reboot_command, "rollback");
}

}  // namespace lca::pivot
