#include "precache/sources.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "common/error.hpp"
#include "formats/archive.hpp"
#include "formats/oci_layout.hpp"

namespace lca::precache {
namespace fs = std::filesystem;
namespace sr = stateroot;

namespace {

void AddUnique(std::vector<std::string>& out, std::set<std::string>& seen, const std::string& s) {
  if (!s.empty() && seen.insert(s).second) out.push_back(s);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::vector<ReleaseTag> ParseImageReferences(std::string_view json, std::string_view what) {
  const Json j = ParseJson(json, what);
  if (!j.is_object() || !j.contains("spec") || !j["spec"].is_object() ||
      !j["spec"].contains("tags") || !j["spec"]["tags"].is_array()) {
    throw Error(Errc::kInvalid,
                std::string(what) + ": not an ImageStream (expected spec.tags[] with from.name)");
  }
  std::vector<ReleaseTag> out;
  for (const auto& t : j["spec"]["tags"]) {
    if (!t.is_object() || !t.contains("from") || !t["from"].is_object()) continue;
    ReleaseTag tag;
    tag.name = t.value("name", "");
    tag.image = t["from"].value("name", "");
    if (!tag.image.empty()) out.push_back(std::move(tag));
  }
  return out;
}

std::vector<std::string> ReleaseImages(const std::vector<ReleaseTag>& tags,
                                       const ExcludePatterns& excludes) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& t : tags) {
    if (excludes.Matches(t.name + "$" + t.image)) continue;
    AddUnique(out, seen, t.image);
  }
  return out;
}

std::map<std::string, std::string> ParsePackagesAndChannels(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t line_no = 0, start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    ++line_no;
    std::string line;
    for (char c : text.substr(start, nl - start)) {
      if (!std::isspace(static_cast<unsigned char>(c))) line += c;
    }
    start = nl + 1;
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size() ||
        line.find(':', colon + 1) != std::string::npos) {
      throw Error(Errc::kInvalid, "operators.packagesAndChannels line " + std::to_string(line_no) +
                                      ": '" + line + "' is not <package>:<channel>");
    }
    out[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return out;
}

std::vector<Json> ParseCatalogFile(std::string_view text, const std::string& name) {
  std::vector<Json> out;
  if (EndsWith(name, ".yaml") || EndsWith(name, ".yml")) {
    for (auto& d : ParseYamlDocuments(text, name)) {
      if (d.is_object()) out.push_back(std::move(d));
    }
    return out;
  }
  // Concatenated JSON values (`opm render` output and most catalog.json files): split at the
  // end of each top-level value, minding strings, then parse each one.
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    if (text[i] != '{' && text[i] != '[') {
      throw Error(Errc::kInvalid, name + ": expected a JSON object at byte " + std::to_string(i));
    }
    const size_t begin = i;
    int depth = 0;
    bool in_string = false;
    for (; i < text.size(); ++i) {
      const char c = text[i];
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"')
        in_string = true;
      else if (c == '{' || c == '[')
        ++depth;
      else if ((c == '}' || c == ']') && --depth == 0) {
        ++i;
        break;
      }
    }
    if (depth != 0) throw Error(Errc::kInvalid, name + ": truncated JSON");
    Json j = ParseJson(text.substr(begin, i - begin), name);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

CatalogSelection SelectCatalogImages(const std::vector<Json>& objects,
                                     const std::map<std::string, std::string>& channels) {
  CatalogSelection sel;
  std::map<std::string, std::string> head_of;  // package -> head bundle name
  std::set<std::string> found;                 // package:channel present
  for (const auto& o : objects) {
    if (o.value("schema", "") != "olm.channel") continue;
    const std::string pkg = o.value("package", "");
    auto want = channels.find(pkg);
    if (want == channels.end() || o.value("name", "") != want->second) continue;
    found.insert(pkg);
    if (!o.contains("entries") || !o["entries"].is_array() || o["entries"].empty()) {
      sel.warnings.push_back(pkg + ":" + want->second + ": the channel has no entries");
      continue;
    }
    std::set<std::string> superseded;
    for (const auto& e : o["entries"]) {
      if (e.contains("replaces") && e["replaces"].is_string()) superseded.insert(e["replaces"]);
      if (e.contains("skips") && e["skips"].is_array()) {
        for (const auto& s : e["skips"]) {
          if (s.is_string()) superseded.insert(s.get<std::string>());
        }
      }
    }
    std::vector<std::string> heads;
    for (const auto& e : o["entries"]) {
      const std::string n = e.value("name", "");
      if (!n.empty() && superseded.count(n) == 0) heads.push_back(n);
    }
    std::string head;
    if (heads.empty()) {
      head = o["entries"].back().value("name", "");
      sel.warnings.push_back(pkg + ":" + want->second +
                             ": no channel head (every entry is replaced): using the last entry " +
                             head);
    } else {
      head = heads.back();
      if (heads.size() > 1) {
        sel.warnings.push_back(pkg + ":" + want->second +
                               ": multiple heads, using the last: " + head);
      }
    }
    head_of[pkg] = head;
  }
  std::set<std::string> seen;
  for (const auto& o : objects) {
    if (o.value("schema", "") != "olm.bundle") continue;
    auto h = head_of.find(o.value("package", ""));
    if (h == head_of.end() || h->second != o.value("name", "")) continue;
    AddUnique(sel.images, seen, o.value("image", ""));
    if (o.contains("relatedImages") && o["relatedImages"].is_array()) {
      for (const auto& r : o["relatedImages"]) {
        if (r.is_object()) AddUnique(sel.images, seen, r.value("image", ""));
      }
    }
  }
  for (const auto& [pkg, ch] : channels) {
    if (found.count(pkg) == 0) sel.missing.push_back(pkg + ":" + ch);
  }
  return sel;
}

std::map<std::string, std::string> ReadImageFiles(const fs::path& layout, const std::string& tag,
                                                  const std::string& prefix_in, size_t max_total) {
  std::string prefix = prefix_in;
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  auto under = [&](const std::string& name) {
    return name == prefix || name.rfind(prefix + "/", 0) == 0;
  };
  const sr::OciImage img = sr::ReadOciImage(layout, tag);
  std::map<std::string, std::string> files;
  size_t total = 0;
  for (const auto& layer : img.layers) {
    sr::VerifyingSource src(layout, layer, "layer " + layer.digest);
    sr::TarReader reader(src, "layer " + layer.digest);
    while (auto e = reader.Next()) {
      const std::string& name = e->name;
      const auto slash = name.rfind('/');
      const std::string dir = slash == std::string::npos ? "" : name.substr(0, slash);
      const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
      if (base == ".wh..wh..opq") {  // everything below from lower layers is gone
        for (auto it = files.begin(); it != files.end();) {
          it = it->first.rfind(dir + "/", 0) == 0 ? files.erase(it) : std::next(it);
        }
        continue;
      }
      if (base.rfind(".wh.", 0) == 0) {
        const std::string gone = (dir.empty() ? "" : dir + "/") + base.substr(4);
        for (auto it = files.begin(); it != files.end();) {
          it = (it->first == gone || it->first.rfind(gone + "/", 0) == 0) ? files.erase(it)
                                                                          : std::next(it);
        }
        continue;
      }
      if (!under(name) || e->type != sr::TarEntryType::kFile) continue;
      std::string data = reader.ReadAll(max_total);
      total += data.size();
      if (total > max_total) {
        throw Error(Errc::kInvalid,
                    "files under /" + prefix + " exceed " + std::to_string(max_total) + " bytes");
      }
      files[name] = std::move(data);
    }
  }
  return files;
}

ImageFiles FetchImageFiles(
    ProcessRunner& runner, const std::string& image, const sr::RegistryAccess& access,
    const fs::path& scratch, const std::string& tag,
    const std::function<std::string(const std::map<std::string, std::string>&)>&
        prefix_for_labels) {
  const fs::path layout = scratch / tag;
  sr::FetchSeed(runner, image, access, layout, tag);  // a plain skopeo copy to an OCI layout
  const sr::OciImage img = sr::ReadOciImage(layout, tag);
  ImageFiles out;
  out.labels = img.labels;
  out.files = ReadImageFiles(layout, tag, prefix_for_labels(img.labels));
  std::error_code ec;
  fs::remove_all(layout, ec);  // the files are in memory; the layout may be large
  return out;
}

std::vector<std::string> ReleasePayloadImages(ProcessRunner& runner,
                                              const std::string& release_image,
                                              const sr::RegistryAccess& access,
                                              const fs::path& scratch,
                                              const ExcludePatterns& excludes) {
  const std::string path = "release-manifests/image-references";
  const ImageFiles f = FetchImageFiles(runner, release_image, access, scratch, "release",
                                       [&](const auto&) { return path; });
  auto it = f.files.find(path);
  if (it == f.files.end()) {
    throw Error(Errc::kInvalid, "release image " + release_image + " has no /" + path +
                                    ": is platform.image a release image?");
  }
  return ReleaseImages(ParseImageReferences(it->second, release_image + ": /" + path), excludes);
}

CatalogSelection CatalogImagesOfIndex(ProcessRunner& runner, const std::string& index_image,
                                      const sr::RegistryAccess& access, const fs::path& scratch,
                                      const std::map<std::string, std::string>& channels) {
  std::string configs = "configs";
  const ImageFiles f = FetchImageFiles(runner, index_image, access, scratch, "index",
                                       [&](const std::map<std::string, std::string>& labels) {
                                         auto l = labels.find(kConfigsLabel);
                                         if (l != labels.end() && !l->second.empty()) {
                                           configs = l->second;
                                         }
                                         return configs;
                                       });
  if (f.files.empty()) {
    throw Error(Errc::kInvalid, "index image " + index_image + " has no file-based catalog in /" +
                                    configs +
                                    " (SQLite catalogs are not supported: use an index built "
                                    "with opm as a file-based catalog, OCP >= 4.11)");
  }
  std::vector<Json> objects;
  for (const auto& [name, text] : f.files) {
    if (!EndsWith(name, ".json") && !EndsWith(name, ".yaml") && !EndsWith(name, ".yml")) continue;
    auto objs = ParseCatalogFile(text, index_image + ": /" + name);
    objects.insert(objects.end(), std::make_move_iterator(objs.begin()),
                   std::make_move_iterator(objs.end()));
  }
  return SelectCatalogImages(objects, channels);
}

}  // namespace lca::precache
