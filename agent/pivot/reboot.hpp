#pragma once
// The reboot request. Production asks systemd (through systemd-run, so the request outlives the
// daemon's own stop); tests and the demo inject a command that records the request and exits,
// then "boot" the next deployment themselves (TESTBED.md, simulated reboot).
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

}  // namespace lca::pivot
