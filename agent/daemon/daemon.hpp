#pragma once
#include <string>

#include "agent/api/ibu.hpp"
#include "agent/daemon/config.hpp"

namespace lca {

// Runs lifecycle-agent until SIGTERM/SIGINT. Returns the process exit code.
int RunDaemon(const DaemonConfig& cfg);

// "stage=Prep state=InProgress: In progress": what systemd shows as the unit's Status line.
std::string NotifyStatusLine(const api::ImageBasedUpgrade& ibu);

}  // namespace lca
