#include "agent/pivot/init_monitor_owner.hpp"

#include <spdlog/spdlog.h>

#include <optional>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;

namespace {

std::optional<fs::path> MonitorUnit(const fs::path& deployment) {
  for (const char* dir : {"etc/systemd/system", "usr/lib/systemd/system"}) {
    const fs::path p = deployment / dir / kInitMonitorUnit;
    std::error_code ec;
    if (fs::exists(fs::symlink_status(p, ec))) return p;
  }
  return std::nullopt;
}

// The agent's unit runs `lcactl init-monitor` (from /usr/bin or, carried, /var/lib/lca/bin);
// the Go operator's runs `lca-cli init-monitor`.
bool IsAgentsUnit(const std::string& text) {
  return text.find("lcactl init-monitor") != std::string::npos;
}

const char* Name(MonitorOwner o) { return o == MonitorOwner::kSeed ? "seed" : "agent"; }

}  // namespace

MonitorOwner DecideInitMonitor(const fs::path& new_deployment, const fs::path& new_stateroot) {
  MonitorOwner owner = MonitorOwner::kAgent;
  if (const auto unit = MonitorUnit(new_deployment)) {
    const auto text = ReadFileIfExists(*unit);
    if (text && !IsAgentsUnit(*text)) owner = MonitorOwner::kSeed;
  }
  const fs::path dir = new_stateroot / "var/lib/lca";
  EnsureDir(dir, 0700);
  WriteFileAtomic(dir / kInitMonitorRecord,
                  Json{{"unit", kInitMonitorUnit}, {"owner", Name(owner)}}.dump() + "\n", 0600);
  spdlog::info("init monitor of the new stateroot's first boot: the {}'s {}", Name(owner),
               kInitMonitorUnit);
  return owner;
}

MonitorOwner RecordedInitMonitor(const fs::path& state_dir) {
  const auto text = ReadFileIfExists(state_dir / kInitMonitorRecord);
  if (!text) return MonitorOwner::kAgent;
  try {
    const Json j = ParseJson(*text, kInitMonitorRecord);
    return j.value("owner", "agent") == "seed" ? MonitorOwner::kSeed : MonitorOwner::kAgent;
  } catch (const std::exception& e) {
    // Unreadable: stopping the unit by name is right for either owner; only the file removal
    // of the seed's case is skipped.
    spdlog::warn("{}: {}", (state_dir / kInitMonitorRecord).string(), e.what());
    return MonitorOwner::kAgent;
  }
}

void StopInitMonitor(ProcessRunner& runner, const std::vector<std::string>& systemctl,
                     const fs::path& state_dir, const fs::path& booted_deployment) {
  auto run = [&](std::initializer_list<std::string> args) {
    ProcessSpec spec;
    spec.argv = systemctl;
    spec.argv.insert(spec.argv.end(), args);
    spec.timeout = std::chrono::seconds(60);
    try {
      return runner.Run(spec).ok();
    } catch (const std::exception& e) {
      spdlog::warn("stopping the init monitor: {}", e.what());
      return false;
    }
  };
  const MonitorOwner owner = RecordedInitMonitor(state_dir);
  if (run({"is-active", "--quiet", kInitMonitorUnit})) run({"stop", kInitMonitorUnit});
  if (run({"is-enabled", "--quiet", kInitMonitorUnit})) run({"disable", kInitMonitorUnit});
  if (owner == MonitorOwner::kSeed) {
    // As the Go operator's DisableInitMonitor: the seed's unit file goes, so nothing brings
    // its timer back on a later boot.
    std::error_code ec;
    fs::remove(booted_deployment / "etc/systemd/system" / kInitMonitorUnit, ec);
    if (ec) spdlog::warn("removing the seed's {}: {}", kInitMonitorUnit, ec.message());
  }
  run({"daemon-reload"});
  spdlog::info("init monitor stopped (the {}'s {})", Name(owner), kInitMonitorUnit);
}

}  // namespace lca::pivot
