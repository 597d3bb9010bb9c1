#pragma once
// The reboot request. Production asks systemd (through systemd-run, so the request outlives the
// daemon's own stop); tests and the demo inject a command that records the request and exits,
// then "boot" the next deployment themselves (TESTBED.md, simulated reboot).
#include <functional>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace lca::pivot {

// "{rationale}" in any argument is replaced by the reason ("upgrade", "rollback").
std::vector<std::string> DefaultRebootCommand();

// Runs the reboot command; throws lca::Error (with the command's stderr tail) when it fails.
// Returning means the reboot was requested, not that it happened: callers stop all work.
void RequestReboot(ProcessRunner& runner, const std::vector<std::string>& command,
                   const std::string& rationale);

// Called with the rationale just before every reboot request (Kubernetes mode sends the
// "Reboot" Event from it); must not throw. Set once at start-up, before any stage runs.
void SetRebootAnnouncer(std::function<void(const std::string& rationale)> announcer);

}  // namespace lca::pivot
