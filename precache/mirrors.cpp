#include "precache/mirrors.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "precache/image_list.hpp"

namespace lca::precache {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A location is a registry[/path]; an empty one, or one with spaces, quotes or a scheme, is not.
void CheckLocation(const std::string& loc, const std::string& what) {
  if (loc.empty() || loc.find_first_of(" \t\r\n\"\\") != std::string::npos ||
      loc.find("://") != std::string::npos) {
    throw Error(Errc::kInvalid,
                what + ": '" + loc + "' is not a registry or repository (host[:port][/path])");
  }
}

void AddDocument(const Json& doc, const std::string& what, std::vector<MirrorRule>& out) {
  if (!doc.is_object()) return;
  const std::string kind = doc.value("kind", "");
  if (kind == "List" && doc.contains("items") && doc["items"].is_array()) {
    for (const auto& item : doc["items"]) AddDocument(item, what, out);
    return;
  }
  const char* key = nullptr;
  if (kind == "ImageContentSourcePolicy") key = "repositoryDigestMirrors";
  if (kind == "ImageDigestMirrorSet") key = "imageDigestMirrors";
  if (key == nullptr) {
    throw Error(Errc::kInvalid, what + ": kind '" + kind +
                                    "' is not supported (ImageContentSourcePolicy, "
                                    "ImageDigestMirrorSet, or a List of them)");
  }
  const std::string name = doc.contains("metadata") ? doc["metadata"].value("name", "") : "";
  const std::string where = what + ": " + kind + " " + name;
  if (!doc.contains("spec") || !doc["spec"].is_object() || !doc["spec"].contains(key) ||
      !doc["spec"][key].is_array()) {
    throw Error(Errc::kInvalid, where + ": spec." + key + " must be a list");
  }
  for (const auto& m : doc["spec"][key]) {
    MirrorRule r;
    r.source = m.value("source", "");
    CheckLocation(r.source, where + ": source");
    if (m.contains("mirrors") && m["mirrors"].is_array()) {
      for (const auto& x : m["mirrors"]) {
        if (!x.is_string()) continue;
        CheckLocation(x.get<std::string>(), where + ": mirror of " + r.source);
        r.mirrors.push_back(x.get<std::string>());
      }
    }
    r.never_contact_source = m.value("mirrorSourcePolicy", "") == "NeverContactSource";
    out.push_back(std::move(r));
  }
}

bool OnHost(const std::string& location, const std::set<std::string>& hosts) {
  return hosts.count(RegistryOf(location)) > 0;
}

}  // namespace

std::vector<MirrorRule> ParseMirrorManifests(std::string_view text, std::string_view what) {
  std::vector<MirrorRule> out;
  for (const auto& doc : ParseYamlDocuments(text, what)) AddDocument(doc, std::string(what), out);
  return out;
}

std::vector<MirrorRule> MergeMirrorRules(const std::vector<MirrorRule>& rules) {
  std::map<std::string, MirrorRule> by;
  for (const auto& r : rules) {
    auto [it, inserted] = by.emplace(r.source, MirrorRule{r.source, {}, false});
    for (const auto& m : r.mirrors) {
      if (std::find(it->second.mirrors.begin(), it->second.mirrors.end(), m) ==
          it->second.mirrors.end()) {
        it->second.mirrors.push_back(m);
      }
    }
    it->second.never_contact_source = it->second.never_contact_source || r.never_contact_source;
  }
  std::vector<MirrorRule> out;
  for (auto& [k, v] : by) out.push_back(std::move(v));
  return out;
}

std::string RenderRegistriesConf(const std::vector<MirrorRule>& rules_in,
                                 const std::vector<std::string>& insecure_registries) {
  const std::set<std::string> insecure(insecure_registries.begin(), insecure_registries.end());
  const auto rules = MergeMirrorRules(rules_in);
  std::string out =
      "# containers-registries.conf(5) version 2, rendered by `lcactl mirrors render` from\n"
      "# ImageContentSourcePolicy / ImageDigestMirrorSet objects. Mirrors are tried in order,\n"
      "# then the source (unless blocked); they serve pulls by digest only.\n";
  for (const auto& r : rules) {
    out += "\n[[registry]]\n";
    out += "  prefix = \"\"\n";
    out += "  location = " + Quote(r.source) + "\n";
    if (OnHost(r.source, insecure)) out += "  insecure = true\n";
    if (r.never_contact_source) out += "  blocked = true\n";
    out += "  mirror-by-digest-only = true\n";
    for (const auto& m : r.mirrors) {
      out += "\n  [[registry.mirror]]\n";
      out += "    location = " + Quote(m) + "\n";
      if (OnHost(m, insecure)) out += "    insecure = true\n";
    }
  }
  return out;
}

std::vector<std::string> MirrorSources(const std::vector<MirrorRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(r.source);
  return out;
}

std::vector<std::string> MirrorSourcesInDir(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    for (auto& src : MirrorSources(ParseMirrorManifests(ReadFile(e.path()), e.path().string()))) {
      out.push_back(std::move(src));
    }
  }
  return out;
}

}  // namespace lca::precache
