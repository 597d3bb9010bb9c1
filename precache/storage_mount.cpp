#include "precache/storage_mount.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cctype>
#include <cstdio>
#include <optional>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace lca::precache {
namespace fs = std::filesystem;

namespace {

constexpr const char* kNotFound = "container storage mountpoint target not found";
constexpr const char* kWhatToDo =
    "give /var/lib/containers its own partition mounted by var-lib-containers.mount, shared by "
    "both stateroots as on the seed host (docs/operator-guide.md, \"Before you start on a real "
    "host\"), or point containersRoot at storage on such a filesystem";

Error NotFound(const std::string& why) {
  return Error(Errc::kInvalid, std::string(kNotFound) + ": " + why + "; " + kWhatToDo);
}

fs::path NearestExisting(fs::path p) {
  std::error_code ec;
  while (!fs::exists(fs::symlink_status(p, ec)) && p.has_relative_path()) p = p.parent_path();
  return fs::canonical(p);
}

struct stat Stat(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw SystemError("stat " + p.string(), errno);
  return st;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 3)), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct MountEntry {
  fs::path mount_point;
  std::string source;
  dev_t dev = 0;
};

std::vector<MountEntry> ParseMountinfo(const std::string& text) {
  std::vector<MountEntry> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(start, nl - start);
    start = nl + 1;
    // id parent major:minor root mount-point options [optional...] - fstype source super-opts
    std::vector<std::string> f;
    size_t p = 0;
    while (p < line.size()) {
      size_t q = line.find(' ', p);
      if (q == std::string::npos) q = line.size();
      f.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (f.size() < 5 || dash == 0 || dash + 2 >= f.size()) continue;
    unsigned maj = 0, mnr = 0;
    if (std::sscanf(f[2].c_str(), "%u:%u", &maj, &mnr) != 2) continue;
    out.push_back(MountEntry{Unescape(f[4]), Unescape(f[dash + 2]), makedev(maj, mnr)});
  }
  return out;
}

bool Under(const fs::path& p, const fs::path& dir) {
  auto d = dir.begin(), x = p.begin();
  for (; d != dir.end(); ++d, ++x) {
    if (d->empty()) continue;  // a trailing "/" component
    if (x == p.end() || *x != *d) return false;
  }
  return true;
}

std::optional<std::string> UnitWhat(const fs::path& deployment, const std::string& unit) {
  for (const char* dir : {"etc/systemd/system", "usr/lib/systemd/system"}) {
    if (auto text = ReadFileIfExists(deployment / dir / unit)) {
      const std::string what = MountUnitWhat(*text);
      if (!what.empty()) return what;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string MountUnitName(const fs::path& where) {
  std::string path = where.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") return "-.mount";
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == '/') {
      out += '-';
    } else if (std::isalnum(c) || c == '_' || (c == '.' && i > 0 && path[i - 1] != '/')) {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + ".mount";
}

std::string MountUnitWhat(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
      line.remove_prefix(1);
    if (line.substr(0, 5) != "What=") continue;
    std::string v(line.substr(5));
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    return v;
  }
  return {};
}

StorageMount CheckSharedContainerStorage(const StorageMountInputs& in) {
  const fs::path root = NearestExisting(in.storage_root);
  const fs::path var = NearestExisting(in.stateroot_var);
  const struct stat rs = Stat(root);
  if (rs.st_dev == Stat(var).st_dev) {
    throw NotFound(in.storage_root.string() +
                   " is on the same filesystem as this stateroot's "
                   "/var (" +
                   in.stateroot_var.string() +
                   "): images pre-cached there stay "
                   "behind in the old stateroot and the new release starts with an empty "
                   "image store");
  }
  const auto text = ReadFileIfExists(in.mountinfo);
  if (!text) throw NotFound("cannot read " + in.mountinfo.string());
  std::optional<MountEntry> best;
  for (const auto& m : ParseMountinfo(*text)) {
    // The last entry for a mount point is the one on top (an overmount).
    if (m.dev != rs.st_dev || !Under(root, m.mount_point)) continue;
    if (!best || m.mount_point.string().size() >= best->mount_point.string().size()) best = m;
  }
  if (!best) {
    throw NotFound("no mount in " + in.mountinfo.string() + " holds " + root.string());
  }
  StorageMount out{best->mount_point, best->source, best->source};
  if (auto what = UnitWhat(in.booted_deployment, MountUnitName(best->mount_point))) {
    out.target = *what;
  }
  return out;
}

}  // namespace lca::precache
