#pragma once
// The TOML half of the registries.conf reader (registries_conf.hpp): toml++ parses the file,
// and this checks that it says nothing beyond what the reader represents exactly: the
// [[registry]] and [[registry.mirror]] tables with their known keys and types, the known global
// keys and [aliases]. Anything else throws, naming the line, so the caller falls back to skopeo.
#include <string>
#include <vector>

#include "precache/registries_conf.hpp"

namespace lca::precache::detail {

struct RawMirror {
  int line = 0;
  std::string location;
  std::string pull_from_mirror;
};

struct RawRegistry {
  int line = 0;         // of its [[registry]] header
  RegistryEntry entry;  // prefix, location and flags as written; mirrors filled in later
  std::vector<RawMirror> mirrors;
};

// Throws lca::Error(Errc::kInvalid, "<name>: line <line>: <what>").
[[noreturn]] void FailAt(const std::string& name, int line, const std::string& what);

// The [[registry]] tables of one file, in file order. Throws as FailAt for a TOML syntax error
// and for anything outside the subset (see registries_conf.hpp).
std::vector<RawRegistry> ReadRegistryTables(const std::string& text, const std::string& name);

}  // namespace lca::precache::detail
