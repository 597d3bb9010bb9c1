#include "recovery/settings.hpp"

#include <string>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "recovery/layout.hpp"

namespace lca::recovery {
namespace fs = std::filesystem;

Settings LoadSettings(const fs::path& file) {
  Settings s;
  std::error_code ec;
  s.file = !file.empty()                          ? file
           : fs::exists(kDefaultSettingsFile, ec) ? fs::path(kDefaultSettingsFile)
                                                  : fs::path();
  if (s.file.empty()) return s;
  s.raw = ParseJson(ReadFile(s.file), s.file.string());
  ApplyHostConfigJson(s.raw, s.file.string(), &s.host);
  return s;
}

BackupOptions BackupOptionsFrom(const Settings& settings) {
  const Json& j = settings.raw;
  const std::string what = settings.file.empty() ? "recovery settings" : settings.file.string();
  auto str = [&](const char* key, std::string fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string())
      throw Error(Errc::kInvalid, what + ": field \"" + key + "\" must be a string");
    return j[key].get<std::string>();
  };
  BackupOptions o;
  o.host = settings.host;
  o.dir = str("backupDir", std::string(layout::kDefaultDir));
  o.recovery_script = str("backupRecoveryScript", kDefaultRecoveryScript);
  if (j.contains("backupSpaceMarginBytes")) {
    if (!j["backupSpaceMarginBytes"].is_number_unsigned())
      throw Error(Errc::kInvalid,
                  what + ": field \"backupSpaceMarginBytes\" must be a non-negative integer");
    o.space_margin = j["backupSpaceMarginBytes"].get<std::uint64_t>();
  }
  return o;
}

}  // namespace lca::recovery
