#include "precache/registries_conf.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>
#include <system_error>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "precache/registries_conf_toml.hpp"

namespace lca::precache {
namespace fs = std::filesystem;

namespace {

using detail::RawMirror;
using detail::RawRegistry;

// containers/image's parseLocation: trailing '/' dropped, URL schemes refused.
std::string CleanLocation(const std::string& name, int line, const std::string& field,
                          const std::string& value) {
  std::string out = value;
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out.starts_with("http://") || out.starts_with("https://")) {
    detail::FailAt(name, line,
                   field + " '" + value + "' must not have a URL scheme (host[:port][/path])");
  }
  return out;
}

void NormalizeMirrors(const std::string& name, RawRegistry& raw) {
  RegistryEntry& e = raw.entry;
  for (const RawMirror& m : raw.mirrors) {
    const std::string loc = CleanLocation(name, m.line, "mirror location", m.location);
    if (loc.empty()) detail::FailAt(name, m.line, "[[registry.mirror]] without a location");
    const std::string& p = m.pull_from_mirror;
    if (!p.empty() && p != "all" && p != "digest-only" && p != "tag-only") {
      detail::FailAt(name, m.line,
                     "pull-from-mirror '" + p + "' is not all, digest-only or tag-only");
    }
    if (!p.empty() && e.mirror_by_digest_only) {
      detail::FailAt(name, m.line,
                     "pull-from-mirror cannot be set when the [[registry]] has "
                     "mirror-by-digest-only = true");
    }
    e.mirrors.push_back(loc);
  }
}

// What containers/image's postProcessRegistries and loadConfigFile check and default.
void Normalize(const std::string& name, RawRegistry& raw) {
  RegistryEntry& e = raw.entry;
  e.location = CleanLocation(name, raw.line, "location", e.location);
  if (e.prefix.empty()) {
    if (e.location.empty())
      detail::FailAt(name, raw.line, "[[registry]] with neither prefix nor location");
    e.prefix = e.location;
  } else {
    e.prefix = CleanLocation(name, raw.line, "prefix", e.prefix);
    const bool wildcard = e.prefix.starts_with("*.");
    if (!wildcard && e.location.empty()) {
      detail::FailAt(name, raw.line,
                     "[[registry]] without a location needs a prefix like *.example.com");
    }
    if (wildcard && e.prefix.find_first_of("/@:") != std::string::npos) {
      detail::FailAt(name, raw.line,
                     "wildcard prefix '" + e.prefix +
                         "' must be just *.domain (no port, path, tag or digest)");
    }
  }
  NormalizeMirrors(name, raw);
}

// containers/image refuses a file naming one registry (location, or the wildcard prefix) more
// than once with different insecure or blocked settings.
void CheckConflicts(const std::string& name, const std::vector<RawRegistry>& raws) {
  std::map<std::string, const RawRegistry*> first;
  for (const RawRegistry& r : raws) {
    const RegistryEntry& e = r.entry;
    const std::string key = e.location.empty() ? e.prefix : e.location;
    const auto [it, inserted] = first.emplace(key, &r);
    if (inserted) continue;
    const RegistryEntry& f = it->second->entry;
    if (f.insecure != e.insecure || f.blocked != e.blocked) {
      detail::FailAt(name, r.line,
                     "registry '" + key + "' is also defined on line " +
                         std::to_string(it->second->line) +
                         " with a different insecure or blocked setting");
    }
  }
}

bool MatchesWildcard(const std::string& repo, const std::string& prefix) {
  // containers/image's refMatchingSubdomainPrefix: the first ".example.com" in repo, before any
  // '/', ending the host (or followed by the port).
  const std::string_view domain = std::string_view(prefix).substr(1);
  const size_t at = repo.find(domain);
  if (at == std::string::npos || repo.substr(0, at).find('/') != std::string::npos) return false;
  const size_t end = at + domain.size();
  return end == repo.size() || repo[end] == ':' || repo[end] == '/' || repo[end] == '@';
}

bool PrefixMatches(const std::string& repo, const std::string& prefix) {
  if (prefix.starts_with("*.")) return MatchesWildcard(repo, prefix);
  if (!repo.starts_with(prefix)) return false;
  if (repo.size() == prefix.size()) return true;
  const char next = repo[prefix.size()];
  return next == '/' || next == ':' || next == '@';
}

bool IsNotFound(const fs::file_status& st) { return st.type() == fs::file_type::not_found; }

[[noreturn]] void ThrowIo(const fs::path& p, const std::error_code& ec) {
  throw Error(Errc::kIo, "reading " + p.string() + ": " + ec.message());
}

// The *.conf files of one drop-in directory, in byte order of name, as containers/image walks
// it.
std::vector<fs::path> DropInFiles(const fs::path& dir) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  if (IsNotFound(st)) return {};
  if (ec) ThrowIo(dir, ec);
  // containers/image's filepath.WalkDir does not follow a symlink at the root of the walk: a
  // symlinked registries.conf.d (or a file in its place) contributes nothing there, nor here.
  if (!fs::is_directory(st)) return {};
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) ThrowIo(dir, ec);
  std::sort(names.begin(), names.end());
  std::vector<fs::path> out;
  for (const auto& name : names) {
    if (!name.ends_with(".conf")) continue;
    const fs::path p = dir / name;
    const fs::file_status link = fs::symlink_status(p, ec);
    if (IsNotFound(link)) continue;  // removed since the listing
    if (ec) ThrowIo(p, ec);
    if (fs::is_directory(link)) continue;  // subdirectories are not walked
    const fs::file_status target = fs::status(p, ec);
    if (IsNotFound(target)) continue;  // dangling symlink: containers/image skips it too
    if (ec) ThrowIo(p, ec);
    if (!fs::is_regular_file(target)) {
      // containers/image would try to read it (and fail, or block on a FIFO).
      throw Error(Errc::kInvalid, p.string() +
                                      ": not a regular file; remove it or rename it so that it "
                                      "does not end in .conf");
    }
    out.push_back(p);
  }
  return out;
}

// containers/image tests existence with faccessat(F_OK), which follows symlinks.
bool Exists(const fs::path& p) {
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (IsNotFound(st)) return false;
  if (ec) ThrowIo(p, ec);
  return true;
}

struct Sources {
  fs::path main;
  bool main_explicit = false;
  std::vector<fs::path> dropin_dirs;
};

// containers/image's newConfigWrapperWithHomeDir, for a SystemContext that at most sets
// SystemRegistriesConfPath.
Sources ChooseSources(const std::optional<fs::path>& main, const fs::path& etc_dir,
                      const std::optional<fs::path>& home) {
  Sources s;
  const fs::path etc_dirs = etc_dir / "registries.conf.d";
  if (main) {
    s.main = *main;
    s.main_explicit = true;
  } else if (home && Exists(*home / ".config/containers/registries.conf")) {
    // The per-user file replaces the system file and its drop-in directory.
    s.main = *home / ".config/containers/registries.conf";
    s.dropin_dirs = {*home / ".config/containers/registries.conf.d"};
    return s;
  } else {
    s.main = etc_dir / "registries.conf";
  }
  s.dropin_dirs.push_back(etc_dirs);
  if (home) s.dropin_dirs.push_back(*home / ".config/containers/registries.conf.d");
  return s;
}

// A later file's entry replaces an earlier one with the same prefix, in its place.
void Merge(RegistriesConf& into, RegistriesConf&& from) {
  for (auto& e : from.registries) {
    auto it = std::find_if(into.registries.begin(), into.registries.end(),
                           [&](const RegistryEntry& x) { return x.prefix == e.prefix; });
    if (it != into.registries.end()) {
      *it = std::move(e);
    } else {
      into.registries.push_back(std::move(e));
    }
  }
}

}  // namespace

bool RegistryEntry::Direct() const {
  return mirrors.empty() && !blocked && (location.empty() || location == prefix);
}

RegistriesConf ParseRegistriesConf(const std::string& text, const std::string& name) {
  std::vector<RawRegistry> raws = detail::ReadRegistryTables(text, name);
  for (auto& r : raws) Normalize(name, r);
  CheckConflicts(name, raws);
  RegistriesConf conf;
  std::set<std::string> prefixes;
  for (auto& r : raws) {
    // containers/image keeps the first entry for a prefix and drops the rest silently.
    if (prefixes.insert(r.entry.prefix).second) conf.registries.push_back(std::move(r.entry));
  }
  return conf;
}

std::optional<fs::path> DefaultHomeDir() {
  const char* env = std::getenv("HOME");
  if (env != nullptr && *env != '\0') return fs::path(env);
  // As containers/storage's unshare.HomeDir: without $HOME, the user's passwd entry.
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_dir != nullptr && *found->pw_dir != '\0') {
    return fs::path(found->pw_dir);
  }
  return std::nullopt;
}

RegistriesConf LoadRegistriesConf(const std::optional<fs::path>& main, const fs::path& etc_dir,
                                  const std::optional<fs::path>& home) {
  const Sources s = ChooseSources(main, etc_dir, home);
  RegistriesConf conf;
  if (auto text = ReadFileIfExists(s.main)) {
    conf = ParseRegistriesConf(*text, s.main.string());
  } else if (s.main_explicit) {
    throw Error(Errc::kNotFound,
                s.main.string() + ": no such file (skopeo --registries-conf would fail too)");
  }
  for (const auto& dir : s.dropin_dirs) {
    for (const auto& file : DropInFiles(dir)) {
      auto text = ReadFileIfExists(file);
      if (!text) continue;  // removed since the listing; containers/image skips it too
      Merge(conf, ParseRegistriesConf(*text, file.string()));
    }
  }
  return conf;
}

const RegistryEntry* FindRegistry(const RegistriesConf& conf, const std::string& repo) {
  const RegistryEntry* best = nullptr;
  for (const auto& e : conf.registries) {
    if (e.prefix.empty() || !PrefixMatches(repo, e.prefix)) continue;
    // Ties in length go to the smaller prefix in byte order, the one containers/image's
    // sorted list holds first ('*' sorts before any host character).
    if (best == nullptr || e.prefix.size() > best->prefix.size() ||
        (e.prefix.size() == best->prefix.size() && e.prefix < best->prefix)) {
      best = &e;
    }
  }
  return best;
}

}  // namespace lca::precache
