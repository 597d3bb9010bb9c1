#include "agent/pivot/agent_carry.hpp"

#include <spdlog/spdlog.h>

#include <map>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;

namespace {

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

// Where a unit lives in a deployment: /etc overrides /usr/lib, as systemd reads them.
std::optional<fs::path> FindUnit(const fs::path& root, const std::string& unit) {
  for (const char* dir : {"etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"}) {
    const fs::path p = root / dir / unit;
    if (Exists(p)) return p;
  }
  return std::nullopt;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

}  // namespace

CarryReport CarryAgent(const fs::path& booted_deployment, const fs::path& new_deployment,
                       const fs::path& new_stateroot, const AgentFiles& files) {
  CarryReport report;
  // 1. Binaries: /usr/bin/x -> /var/lib/lca/bin/x when the new release lacks them.
  std::map<std::string, std::string> rewrites;  // "/usr/bin/x" -> "/var/lib/lca/bin/x"
  for (const auto& rel : files.binaries) {
    if (Exists(new_deployment / rel)) continue;
    const fs::path src = booted_deployment / rel;
    if (!fs::is_regular_file(src)) continue;  // not installed here either: nothing to carry
    const std::string name = fs::path(rel).filename().string();
    const fs::path dst = new_stateroot / "var/lib/lca/bin" / name;
    rewrites["/" + rel] = "/var/lib/lca/bin/" + name;
    const std::string content = ReadFile(src);
    if (ReadFileIfExists(dst) == content) continue;  // a resumed Upgrade: already there
    EnsureDir(dst.parent_path(), 0755);
    WriteFileAtomic(dst, content, 0755);
    report.carried.push_back("binary /" + rel + " -> /var/lib/lca/bin/" + name);
  }
  // 2. Units: present (rewritten when a binary moved) and enabled.
  const fs::path etc_units = new_deployment / "etc/systemd/system";
  for (const auto& unit : files.units) {
    auto in_new = FindUnit(new_deployment, unit);
    const auto in_booted = FindUnit(booted_deployment, unit);
    if (!in_new && !in_booted) continue;
    const fs::path source = in_new ? *in_new : *in_booted;
    std::string text = ReadFile(source);
    std::string rewritten = text;
    for (const auto& [from, to] : rewrites) rewritten = Replace(rewritten, from, to);
    const fs::path target = etc_units / unit;
    if (!in_new || rewritten != text) {
      EnsureDir(etc_units, 0755);
      if (ReadFileIfExists(target).value_or("") != rewritten) {
        WriteFileAtomic(target, rewritten, 0644);
        report.carried.push_back("unit " + unit);
      }
    }
    const fs::path wants = etc_units / "multi-user.target.wants" / unit;
    if (!Exists(wants)) {
      EnsureDir(wants.parent_path(), 0755);
      const fs::path now_at = Exists(target) ? fs::path("/etc/systemd/system") / unit
                                             : "/" / in_new->lexically_relative(new_deployment);
      fs::create_symlink(now_at, wants);
      report.carried.push_back("enabled " + unit);
    }
  }
  // 3. Config: file by file, never over the seed's own, never the secrets.
  const fs::path cfg_src = booted_deployment / files.config_dir;
  std::error_code ec;
  if (fs::is_directory(cfg_src, ec)) {
    for (auto it = fs::recursive_directory_iterator(cfg_src);
         it != fs::recursive_directory_iterator(); ++it) {
      const fs::path rel = it->path().lexically_relative(cfg_src);
      if (*rel.begin() == "secrets") {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      const fs::path dst = new_deployment / files.config_dir / rel;
      if (it->is_directory()) {
        EnsureDir(dst, 0755);
      } else if (it->is_regular_file() && !Exists(dst)) {
        EnsureDir(dst.parent_path(), 0755);
        const auto perms = fs::status(it->path()).permissions();
        WriteFileAtomic(dst, ReadFile(it->path()), static_cast<mode_t>(perms) & 07777);
        report.carried.push_back("config /" + (fs::path(files.config_dir) / rel).string());
      }
    }
  }
  for (const auto& c : report.carried) spdlog::info("carried into the new stateroot: {}", c);
  return report;
}

}  // namespace lca::pivot
