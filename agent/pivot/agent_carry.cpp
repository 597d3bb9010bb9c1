#include "agent/pivot/agent_carry.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>

#include "common/atomic_file.hpp"
#include "common/beneath.hpp"
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

// The content of the regular file `name` in `dir`, or nullopt when there is none (a symlink
// there is not a file we wrote, and is not followed: it gets replaced).
std::optional<std::string> ReadRegularAt(int dir, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  UniqueFd fd = beneath::Open(dir, name, O_RDONLY);
  return ReadFile("/proc/self/fd/" + std::to_string(fd.get()));
}

bool ExistsAt(int dir, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// 1. Binaries: /usr/bin/x -> /var/lib/lca/bin/x when the new release lacks them. Returns the
// rewrites for the units ("/usr/bin/x" -> "/var/lib/lca/bin/x").
std::map<std::string, std::string> CarryBinaries(const fs::path& booted_deployment,
                                                 const fs::path& new_deployment, int stateroot,
                                                 const AgentFiles& files, CarryReport& report) {
  std::map<std::string, std::string> rewrites;
  for (const auto& rel : files.binaries) {
    if (Exists(new_deployment / rel)) continue;
    const fs::path src = booted_deployment / rel;
    if (!fs::is_regular_file(src)) continue;  // not installed here either: nothing to carry
    const std::string name = fs::path(rel).filename().string();
    rewrites["/" + rel] = "/var/lib/lca/bin/" + name;
    const std::string content = ReadFile(src);
    const UniqueFd bin = beneath::MakeDirs(stateroot, "var/lib/lca/bin", 0755);
    if (ReadRegularAt(bin.get(), name) == content) continue;  // a resumed Upgrade: already there
    beneath::WriteFileAtomicAt(bin.get(), name, content, 0755);
    report.carried.push_back("binary /" + rel + " -> /var/lib/lca/bin/" + name);
  }
  return rewrites;
}

// 2. Units: present (rewritten when a binary moved) and enabled.
void CarryUnits(const fs::path& booted_deployment, const fs::path& new_deployment, int deployment,
                const AgentFiles& files, const std::map<std::string, std::string>& rewrites,
                CarryReport& report) {
  for (const auto& unit : files.units) {
    auto in_new = FindUnit(new_deployment, unit);
    const auto in_booted = FindUnit(booted_deployment, unit);
    if (!in_new && !in_booted) continue;
    const fs::path source = in_new ? *in_new : *in_booted;
    std::string text = ReadFile(source);
    std::string rewritten = text;
    for (const auto& [from, to] : rewrites) rewritten = Replace(rewritten, from, to);
    const UniqueFd units = beneath::MakeDirs(deployment, "etc/systemd/system", 0755);
    if ((!in_new || rewritten != text) &&
        ReadRegularAt(units.get(), unit).value_or("") != rewritten) {
      beneath::WriteFileAtomicAt(units.get(), unit, rewritten, 0644);
      report.carried.push_back("unit " + unit);
    }
    const UniqueFd wants = beneath::MakeDirs(units.get(), "multi-user.target.wants", 0755);
    if (!ExistsAt(wants.get(), unit)) {
      const fs::path now_at = ExistsAt(units.get(), unit)
                                  ? fs::path("/etc/systemd/system") / unit
                                  : "/" / in_new->lexically_relative(new_deployment);
      if (::symlinkat(now_at.c_str(), wants.get(), unit.c_str()) != 0) {
        throw SystemError("enabling " + unit + " in " + new_deployment.string(), errno);
      }
      report.carried.push_back("enabled " + unit);
    }
  }
}

// 3. Config: file by file, never over the seed's own, never the secrets.
void CarryConfig(const fs::path& booted_deployment, int deployment, const AgentFiles& files,
                 CarryReport& report) {
  const fs::path cfg_src = booted_deployment / files.config_dir;
  std::error_code ec;
  if (!fs::is_directory(cfg_src, ec)) return;
  for (auto it = fs::recursive_directory_iterator(cfg_src);
       it != fs::recursive_directory_iterator(); ++it) {
    const fs::path rel = it->path().lexically_relative(cfg_src);
    if (*rel.begin() == "secrets") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    const fs::path dst = fs::path(files.config_dir) / rel;
    if (it->is_directory()) {
      beneath::MakeDirs(deployment, dst.string(), 0755);
      continue;
    }
    if (!it->is_regular_file()) continue;
    const UniqueFd dir = beneath::MakeDirs(deployment, dst.parent_path().string(), 0755);
    const std::string name = dst.filename().string();
    if (ExistsAt(dir.get(), name)) continue;
    const auto perms = fs::status(it->path()).permissions();
    beneath::WriteFileAtomicAt(dir.get(), name, ReadFile(it->path()),
                               static_cast<mode_t>(perms) & 07777);
    report.carried.push_back("config /" + dst.string());
  }
}

}  // namespace

// Every write lands beneath the new stateroot or deployment without following a symlink: both
// came from the seed, which could have planted a link from its var/lib/lca/bin or its unit
// directory to an absolute path, which on this host is the running release's own.
CarryReport CarryAgent(const fs::path& booted_deployment, const fs::path& new_deployment,
                       const fs::path& new_stateroot, const AgentFiles& files) {
  CarryReport report;
  const UniqueFd stateroot_fd = beneath::OpenRoot(new_stateroot);
  const UniqueFd deployment_fd = beneath::OpenRoot(new_deployment);
  const auto rewrites =
      CarryBinaries(booted_deployment, new_deployment, stateroot_fd.get(), files, report);
  CarryUnits(booted_deployment, new_deployment, deployment_fd.get(), files, rewrites, report);
  CarryConfig(booted_deployment, deployment_fd.get(), files, report);
  for (const auto& c : report.carried) spdlog::info("carried into the new stateroot: {}", c);
  return report;
}

}  // namespace lca::pivot
