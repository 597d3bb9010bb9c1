#include "agent/pivot/hooks.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;

int RunHooks(ProcessRunner& runner, const HookRun& run) {
  std::error_code ec;
  if (!fs::is_directory(run.dir, ec)) return 0;
  std::vector<fs::path> hooks;
  for (const auto& e : fs::directory_iterator(run.dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".")) continue;
    if (!e.is_regular_file() || ::access(e.path().c_str(), X_OK) != 0) {
      spdlog::warn("hooks: skipping {}: not an executable file", e.path().string());
      continue;
    }
    hooks.push_back(e.path());
  }
  std::sort(hooks.begin(), hooks.end());
  for (const auto& hook : hooks) {
    ProcessSpec spec;
    spec.argv = {hook.string()};
    spec.env = run.env;
    spec.timeout = run.timeout;
    spec.stderr_tail_bytes = 8192;
    spdlog::info("hooks: running {}", hook.string());
    const auto r = runner.Run(spec);
    for (const auto* text : {&r.stdout_data, &r.stderr_tail}) {
      std::string_view rest = *text;
      while (!rest.empty()) {
        const auto nl = rest.find('\n');
        spdlog::info("hook {}: {}", hook.filename().string(), rest.substr(0, nl));
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
      }
    }
    if (!r.ok()) {
      std::string tail = r.stderr_tail;
      while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
      throw Error(Errc::kProcess,
                  "hook " + hook.string() + " " + r.Describe() + (tail.empty() ? "" : ": " + tail));
    }
  }
  return static_cast<int>(hooks.size());
}

}  // namespace lca::pivot
