#pragma once
// One watchdog per boot of the new stateroot, decided explicitly at the pivot.
//
// A seed made by the Go operator's `lca-cli create` carries its own lca-init-monitor.service,
// enabled in its /etc (reference-lca §3.7, §5.2: `lca-cli init-monitor --monitor`); the
// agent's monitor (`lcactl init-monitor --monitor`) has the same unit name. Both read the same
// autorollback_config.json and roll back the same way, so exactly one of them runs:
//  * the seed brought one: the seed's, left exactly as the seed made it (the agent's is not
//    installed over it). The Go monitor does not watch for completion, so at UpgradeCompleted
//    the agent stops it as the Go operator does (§5.5: stop, disable, remove
//    /etc/systemd/system/lca-init-monitor.service, daemon-reload);
//  * otherwise the agent's, carried in by CarryAgent; at completion it is stopped and disabled
//    (it also exits by itself once it sees UpgradeCompleted).
// The decision is recorded in the new stateroot (var/lib/lca/init-monitor.json) at the pivot
// and read back after the reboot, so completion stops exactly the watchdog that was armed.
#include <filesystem>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "common/state_layout.hpp"

namespace lca::pivot {

inline constexpr const char* kInitMonitorUnit = "lca-init-monitor.service";
inline constexpr const char* kInitMonitorRecord = state_layout::kInitMonitorRecord;

enum class MonitorOwner { kAgent, kSeed };

// Called after CarryAgent: which monitor the new deployment will run, recorded atomically in
// <new_stateroot>/var/lib/lca/init-monitor.json. Idempotent.
MonitorOwner DecideInitMonitor(const std::filesystem::path& new_deployment,
                               const std::filesystem::path& new_stateroot);

// The recorded owner in `state_dir` (the booted stateroot's /var/lib/lca); kAgent when there is
// no record (an Upgrade started by an older agent).
MonitorOwner RecordedInitMonitor(const std::filesystem::path& state_dir);

// After UpgradeCompleted: stops the recorded watchdog (see above). `booted_deployment` is the
// deployment root the seed's unit file is removed from. Failures are logged, never thrown: the
// upgrade is complete either way.
void StopInitMonitor(ProcessRunner& runner, const std::vector<std::string>& systemctl,
                     const std::filesystem::path& state_dir,
                     const std::filesystem::path& booted_deployment);

}  // namespace lca::pivot
