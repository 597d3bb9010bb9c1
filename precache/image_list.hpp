#pragma once
// The list of images to pre-cache (reference-lca §4.1, reference-talm-spoke §1.2, §1.5, §1.7):
// parsing of containers.list / additionalImages text, the seed release-registry override,
// excludePrecachePatterns, and the final "nothing to pull" check. Pure functions of text: no
// registry, no podman.
#include <cstddef>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace lca::precache {

// One image reference per line. Lines are trimmed (so CRLF files and TALM's old trailing spaces
// work); empty lines and lines starting with '#' are skipped; order is kept and exact duplicates
// are dropped (first occurrence wins). The last line counts with or without a trailing newline:
// TALM's pull.sh silently dropped an unterminated last line, which we must not copy.
// A reference must not contain whitespace or control characters and is at most
// kMaxImageReferenceBytes long; otherwise throws kInvalid "<what> line <n>: ..." so the user can
// find the line.
inline constexpr std::size_t kMaxImageReferenceBytes = 1024;
std::vector<std::string> ParseImageList(std::string_view text, std::string_view what);

// Concatenates lists in order and drops exact duplicates (first occurrence wins).
std::vector<std::string> MergeImageLists(const std::vector<std::vector<std::string>>& lists);

// "<registry>" of an image or mirror source: the text before the first '/', or the whole string
// when there is none (a bare registry host as written in some ICSP/IDMS sources).
std::string RegistryOf(std::string_view image_or_source);

// Inputs of the seed release-registry override (reference-lca §4.1).
struct RegistryOverrideInput {
  std::string seed_release_registry;             // manifest.json release_registry
  bool seed_mirror_registry_configured = false;  // manifest.json mirror_registry_configured
  std::string cluster_release_registry;          // registry of the running CVO's first image
  // ICSP repositoryDigestMirrors[].source and IDMS imageDigestMirrors[].source, as written
  // (full repositories or bare registries; only their registry part is compared).
  std::vector<std::string> cluster_mirror_sources;
};

// The decision alone: with no cluster mirror sources, override iff the seed had a mirror
// registry; otherwise override iff the seed's release registry is not one of the registries of
// the cluster's mirror sources. False when either registry is empty or they are equal, since the
// rewrite would then be a no-op.
bool ShouldOverrideRegistry(const RegistryOverrideInput& in);

// Applies the override: every image that starts with "<seed release_registry>/" gets that prefix
// replaced by "<cluster release registry>/". The registry is a LITERAL prefix ending at a '/'.
// The reference uses it as an unescaped regex with no '/' anchor, which lets "quay.io" rewrite
// "quayXio/..." and "quay.io:5000/..." by mistake; we don't. The result is de-duplicated again,
// because two entries can become the same image after the rewrite.
std::vector<std::string> ApplyRegistryOverride(const std::vector<std::string>& images,
                                               const RegistryOverrideInput& in);

// excludePrecachePatterns: one pattern per line. Whitespace-only lines are skipped and each line
// is trimmed, as TALM's release.sh normalises the file. There are no comment lines: '#' is an
// ordinary pattern character.
//
// Dialect: ECMAScript regular expressions (std::regex), searched ANYWHERE in the image
// reference, unanchored, like TALM's `grep -v -f`. TALM uses GNU basic regex (BRE); the two agree
// on plain text, '.', '*', '[...]', '^' and '$', which is what real exclude lists use ("aws",
// "-for-gcp"). They differ on `+ ? | ( ) { }`, which are operators here but literal characters
// in BRE (and BRE's `\+ \| \( \)` are operators there but invalid or literal here): write
// `\+` to match a literal '+'. An invalid pattern throws kInvalid naming the pattern and its line.
class ExcludePatterns {
 public:
  static ExcludePatterns Parse(std::string_view text, std::string_view what);

  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }
  // True when any pattern is found in `image`.
  bool Matches(std::string_view image) const;

 private:
  struct Pattern {
    std::string text;
    size_t line = 0;
    std::regex re;
  };
  std::vector<Pattern> patterns_;
};

// The images no pattern matches, in order.
std::vector<std::string> ApplyExcludes(const std::vector<std::string>& images,
                                       const ExcludePatterns& excludes);

// Throws kInvalid "no images specified for precaching: ..." when `images` is empty. This is a
// plain failure for the caller to report: the reference requeues it forever, which can never
// succeed because nothing changes between attempts.
void RequireImages(const std::vector<std::string>& images);

// The whole pipeline: parse the seed's containers.list and additionalImages; in the seed's list
// only, override the registry and then apply the exclude patterns (so patterns see the names that
// will actually be pulled); then merge (seed first) and require a non-empty result. Additional
// images are named explicitly by the user, so they are used as given, as in TALM where
// excludePrecachePatterns filters only the derived payload list and never additionalImages.
struct ImageListInput {
  std::string_view containers_list;    // the seed's containers.list text
  std::string_view additional_images;  // one image per line, may be empty
  std::string_view exclude_patterns;   // one pattern per line, may be empty
  RegistryOverrideInput registry;
};
std::vector<std::string> BuildPrecacheList(const ImageListInput& in);

// images.txt form: one image per line, each followed by '\n' (so line-reading tools never lose
// the last one). Empty list -> empty string.
std::string RenderImageList(const std::vector<std::string>& images);

}  // namespace lca::precache
