#include "precache/image_list.hpp"

#include <algorithm>
#include <cctype>
#include <unordered_set>

#include "common/error.hpp"

namespace lca::precache {
namespace {

Error Invalid(const std::string& msg) { return Error(Errc::kInvalid, msg); }

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Calls f(line_number, line) for every line, the last one whether or not it ends in '\n'.
template <class F>
void ForEachLine(std::string_view text, F&& f) {
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    f(++line_no, text.substr(start, end - start));
    start = end + 1;
  }
}

std::vector<std::string> Dedupe(const std::vector<std::string>& images) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& image : images) {
    if (seen.insert(image).second) out.push_back(image);
  }
  return out;
}

}  // namespace

std::vector<std::string> ParseImageList(std::string_view text, std::string_view what) {
  std::vector<std::string> images;
  ForEachLine(text, [&](size_t line_no, std::string_view raw) {
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') return;
    // The exclude patterns are std::regex, which recurses once per character of the image: a
    // seed listing a megabyte-long "image" would crash the daemon there.
    if (line.size() > kMaxImageReferenceBytes) {
      throw Invalid(std::string(what) + " line " + std::to_string(line_no) + ": '" +
                    std::string(line.substr(0, 80)) + "...' is " + std::to_string(line.size()) +
                    " bytes long; an image reference is at most " +
                    std::to_string(kMaxImageReferenceBytes) +
                    " (a name of 255, a tag of 128 and a digest)");
    }
    for (char c : line) {
      const auto u = static_cast<unsigned char>(c);
      if (std::isspace(u) || std::iscntrl(u)) {
        throw Invalid(std::string(what) + " line " + std::to_string(line_no) + ": '" +
                      std::string(line) +
                      "' is not an image reference (it contains whitespace or a control "
                      "character); put exactly one image per line");
      }
    }
    images.emplace_back(line);
  });
  return Dedupe(images);
}

std::vector<std::string> MergeImageLists(const std::vector<std::vector<std::string>>& lists) {
  std::vector<std::string> all;
  for (const auto& list : lists) all.insert(all.end(), list.begin(), list.end());
  return Dedupe(all);
}

std::string RegistryOf(std::string_view image_or_source) {
  return std::string(image_or_source.substr(0, image_or_source.find('/')));
}

bool ShouldOverrideRegistry(const RegistryOverrideInput& in) {
  if (in.seed_release_registry.empty() || in.cluster_release_registry.empty() ||
      in.seed_release_registry == in.cluster_release_registry) {
    return false;
  }
  if (in.cluster_mirror_sources.empty()) return in.seed_mirror_registry_configured;
  // Seed images from a registry the cluster mirrors resolve through the cluster's mirrors, so
  // they must keep their names; anything else must be pointed at the cluster's own registry.
  const bool mirrored =
      std::any_of(in.cluster_mirror_sources.begin(), in.cluster_mirror_sources.end(),
                  [&](const std::string& s) { return RegistryOf(s) == in.seed_release_registry; });
  return !mirrored;
}

std::vector<std::string> ApplyRegistryOverride(const std::vector<std::string>& images,
                                               const RegistryOverrideInput& in) {
  if (!ShouldOverrideRegistry(in)) return images;
  const std::string from = in.seed_release_registry + "/";
  const std::string to = in.cluster_release_registry + "/";
  std::vector<std::string> out;
  out.reserve(images.size());
  for (const auto& image : images) {
    if (image.starts_with(from)) {
      out.push_back(to + image.substr(from.size()));
    } else {
      out.push_back(image);
    }
  }
  return Dedupe(out);
}

ExcludePatterns ExcludePatterns::Parse(std::string_view text, std::string_view what) {
  ExcludePatterns result;
  ForEachLine(text, [&](size_t line_no, std::string_view raw) {
    const std::string_view line = Trim(raw);
    if (line.empty()) return;
    Pattern p;
    p.text = std::string(line);
    p.line = line_no;
    try {
      p.re = std::regex(p.text, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw Invalid(std::string(what) + " line " + std::to_string(line_no) + ": pattern '" +
                    p.text + "' is not a valid ECMAScript regular expression (" + e.what() +
                    "); fix or remove it (escape literal characters such as '+' as '\\+')");
    }
    result.patterns_.push_back(std::move(p));
  });
  return result;
}

bool ExcludePatterns::Matches(std::string_view image) const {
  return std::any_of(patterns_.begin(), patterns_.end(), [&](const Pattern& p) {
    return std::regex_search(image.begin(), image.end(), p.re);
  });
}

std::vector<std::string> ApplyExcludes(const std::vector<std::string>& images,
                                       const ExcludePatterns& excludes) {
  std::vector<std::string> out;
  std::copy_if(images.begin(), images.end(), std::back_inserter(out),
               [&](const std::string& image) { return !excludes.Matches(image); });
  return out;
}

void RequireImages(const std::vector<std::string>& images) {
  if (!images.empty()) return;
  throw Invalid(
      "no images specified for precaching: the seed's containers.list and additionalImages are "
      "empty, or excludePrecachePatterns removed every image; check the seed image and the "
      "exclude patterns");
}

std::vector<std::string> BuildPrecacheList(const ImageListInput& in) {
  const auto excludes = ExcludePatterns::Parse(in.exclude_patterns, "excludePrecachePatterns");
  auto seed = ParseImageList(in.containers_list, "containers.list");
  seed = ApplyExcludes(ApplyRegistryOverride(seed, in.registry), excludes);
  auto images = MergeImageLists({seed, ParseImageList(in.additional_images, "additionalImages")});
  RequireImages(images);
  return images;
}

std::string RenderImageList(const std::vector<std::string>& images) {
  std::string out;
  for (const auto& image : images) {
    out += image;
    out += '\n';
  }
  return out;
}

}  // namespace lca::precache
