#pragma once
// A conservative reader of containers-registries.conf(5) version 2, for one question: may an
// image be fetched straight from the registry its name points at (no mirror, no rewrite, not
// blocked), the way skopeo/podman would fetch it? The in-process registry client asks this
// before reading a manifest itself instead of running `skopeo inspect`.
//
// It understands an exact subset of TOML (what real registries.conf files use: the Fedora/RHEL
// defaults, Debian's shortnames.conf, what the Machine Config Operator and mirrors.cpp write)
// and throws for anything else, including version 1 syntax. A throw is never wrong: the caller
// then leaves every image to skopeo, which is only slower. Reading a file differently from
// containers/image would be wrong, so where they differ this code follows containers/image v5
// (pkg/sysregistriesv2), not the man page.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lca::precache {

struct RegistryEntry {
  // Normalized as containers/image does: trailing '/' removed; an absent or empty prefix is the
  // location.
  std::string prefix;
  std::string location;  // empty only with a wildcard prefix ("*.example.com")
  bool insecure = false;
  bool blocked = false;
  bool mirror_by_digest_only = false;
  std::vector<std::string> mirrors;  // [[registry.mirror]] locations, in order

  // True when an image under this prefix is fetched from `prefix` itself with no mirror: no
  // mirrors, not blocked, and location empty or equal to prefix. (`insecure` still applies.)
  bool Direct() const;
};

struct RegistriesConf {
  // At most one entry per prefix.
  std::vector<RegistryEntry> registries;
};

// Parses one file's text; `name` is used in messages. Throws lca::Error(Errc::kInvalid,
// "<name>: line N: <what>") for anything outside the subset, for version 1 syntax, and for what
// containers/image itself rejects ([[registry]] with neither prefix nor location, a URL scheme
// in a location, ...). Within one file the first entry for a prefix wins, as in containers/image.
RegistriesConf ParseRegistriesConf(const std::string& text, const std::string& name);

// The home directory containers/image uses for the per-user files: $HOME when set and not
// empty, else the passwd entry of the effective user, else nullopt (no per-user files).
std::optional<std::filesystem::path> DefaultHomeDir();

// Loads what containers/image loads for a process like skopeo:
//  - main file: `main` if given (skopeo --registries-conf); else
//    <home>/.config/containers/registries.conf if it exists; else <etc_dir>/registries.conf.
//  - drop-ins: every *.conf in <etc_dir>/registries.conf.d, then in
//    <home>/.config/containers/registries.conf.d, in byte order of file name within each; the
//    <etc_dir> one is skipped when the per-user main file is used.
//  - a later file's [[registry]] entry replaces an earlier one with the same prefix (keeping
//    its position); other entries are kept.
// A missing default main file is an empty config; a missing `main` throws kNotFound (skopeo
// --registries-conf fails too). Unreadable files throw; parse errors throw as above.
RegistriesConf LoadRegistriesConf(
    const std::optional<std::filesystem::path>& main,
    const std::filesystem::path& etc_dir = "/etc/containers",
    const std::optional<std::filesystem::path>& home = DefaultHomeDir());

// The entry that applies to `repo` ("host[:port]/path/name", no tag or digest), or nullptr:
// the longest matching prefix, as containers/image's FindRegistry. A prefix matches when repo
// equals it or continues it with '/', ':' or '@' (so "example.com" also matches
// "example.com:5000/x", a containers/image quirk kept on purpose). "*.example.com" matches a
// repo whose host ends in ".example.com" (any depth, any port), never "example.com" itself.
// A longer match always wins, so an exact prefix beats a wildcard except on a tie in length
// ("a.example.com" vs "*.example.com"): containers/image keeps its entries sorted by prefix and
// takes the first of equal length, i.e. the wildcard, and so does this.
const RegistryEntry* FindRegistry(const RegistriesConf& conf, const std::string& repo);

}  // namespace lca::precache
