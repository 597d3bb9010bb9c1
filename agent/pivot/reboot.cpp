#include "agent/pivot/reboot.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/logging.hpp"

namespace lca::pivot {
namespace {
std::function<void(const std::string&)>& Announcer() {
  static std::function<void(const std::string&)> announcer;
  return announcer;
}
}  // namespace

void SetRebootAnnouncer(std::function<void(const std::string& rationale)> announcer) {
  Announcer() = std::move(announcer);
}

std::vector<std::string> DefaultRebootCommand() {
  return {"systemd-run",
          "--unit",
          "lifecycle-agent-reboot",
          "--description",
          "lifecycle-agent: {rationale}",
          "systemctl",
          "--message=Image Based Upgrade",
          "reboot"};
}

void RequestReboot(ProcessRunner& runner, const std::vector<std::string>& command,
                   const std::string& rationale) {
  if (command.empty())
    throw Error(Errc::kInvalid, "reboot command is empty (config rebootCommand)");
  ProcessSpec spec;
  for (std::string arg : command) {
    for (auto pos = arg.find("{rationale}"); pos != std::string::npos;
         pos = arg.find("{rationale}", pos + rationale.size())) {
      arg.replace(pos, 11, rationale);
    }
    spec.argv.push_back(std::move(arg));
  }
  spec.timeout = std::chrono::minutes(2);
  LogEvent(spdlog::level::warn, message_id::kRebootRequest, {{"LCA_REBOOT_RATIONALE", rationale}},
           fmt::format("requesting a reboot ({}): {}", rationale, fmt::join(spec.argv, " ")));
  if (Announcer()) Announcer()(rationale);
  const auto r = runner.Run(spec);
  if (!r.ok()) {
    throw Error(Errc::kProcess, "reboot (" + rationale + "): " + spec.argv[0] + " " + r.Describe() +
                                    (r.stderr_tail.empty() ? "" : ": ") + r.stderr_tail);
  }
}

}  // namespace lca::pivot
