#pragma once
// Image lists beyond the seed (reference-talm-spoke §1.5, §1.6): a release image's payload
// (`release-manifests/image-references`) and operator catalogs (a file-based catalog in an index
// image). Images are fetched once with skopeo into an OCI layout in a scratch dir and the few
// files needed are read from their layers with libarchive: no podman pull, no image mount, no
// `opm` binary from inside the image, no python.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "precache/image_list.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::precache {

// ---- release payload ------------------------------------------------------------------------

struct ReleaseTag {
  std::string name;   // the tag name ("etcd")
  std::string image;  // from.name, the pull spec
};
// image-references is an ImageStream: spec.tags[].{name, from.name}. Throws kInvalid naming
// `what` when it is not one.
std::vector<ReleaseTag> ParseImageReferences(std::string_view json, std::string_view what);

// The pull specs, in order, de-duplicated, without those whose "<tag name>$<pull spec>" any
// exclude pattern matches (TALM matches the tag name and the pull spec together: pattern
// "aws" drops tag "aws-ebs-csi-driver" whatever its image is called).
std::vector<std::string> ReleaseImages(const std::vector<ReleaseTag>& tags,
                                       const ExcludePatterns& excludes);

// ---- operator catalogs (file-based catalogs) ------------------------------------------------

// One `<package>:<channel>` per line (spaces anywhere removed, as TALM does; empty lines
// skipped). A line that does not split into exactly two non-empty parts is kInvalid naming the
// line (TALM skips it with a message, which silently pre-caches nothing for it). The last line
// for a package wins.
std::map<std::string, std::string> ParsePackagesAndChannels(std::string_view text);

// FBC objects from one catalog file: a stream of concatenated JSON objects (.json) or YAML
// documents (.yaml/.yml). Throws kInvalid naming the file.
std::vector<Json> ParseCatalogFile(std::string_view text, const std::string& name);

struct CatalogSelection {
  std::vector<std::string> images;    // head bundles' images and relatedImages, de-duplicated
  std::vector<std::string> warnings;  // multiple heads, no entries, cycles
  std::vector<std::string> missing;   // requested package:channel not in this catalog
};

// For each requested package:channel, the channel head: the entry no other entry of the channel
// replaces or skips (TALM ignores skips, which yields two "heads" for a skipping chain). Several
// heads: the last in entry order wins, with a warning; none (a cycle): the last entry, with a
// warning. The head bundle's `image` and every relatedImages[].image are selected. Nothing is
// added for a package or channel the catalog lacks (no empty line, unlike TALM's parse_index).
CatalogSelection SelectCatalogImages(const std::vector<Json>& objects,
                                     const std::map<std::string, std::string>& channels);

// ---- files from images ----------------------------------------------------------------------

// The files under `prefix` (a directory, or one file's path) of the image in an OCI layout,
// read layer by layer, base first, so upper layers replace lower ones and whiteouts
// (.wh.<name>, .wh..wh..opq) delete. Layer digests are verified. Paths are as in the image
// without a leading "/". At most `max_total` bytes are kept (kInvalid beyond).
std::map<std::string, std::string> ReadImageFiles(const std::filesystem::path& layout,
                                                  const std::string& tag, const std::string& prefix,
                                                  size_t max_total = size_t{512} << 20);

// Copies `image` with skopeo into <scratch>/<tag> (an OCI layout) and reads files under
// `prefix`. Returns the files and the image's config labels (the catalog's configs dir is
// named by a label).
struct ImageFiles {
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> labels;
};
ImageFiles FetchImageFiles(
    ProcessRunner& runner, const std::string& image, const stateroot::RegistryAccess& access,
    const std::filesystem::path& scratch, const std::string& tag,
    const std::function<std::string(const std::map<std::string, std::string>&)>& prefix_for_labels);

// The label naming an index image's file-based catalog dir, and its default.
inline constexpr const char* kConfigsLabel = "operators.operatorframework.io.index.configs.v1";

// The whole release step: the payload images of `release_image`, filtered.
std::vector<std::string> ReleasePayloadImages(ProcessRunner& runner,
                                              const std::string& release_image,
                                              const stateroot::RegistryAccess& access,
                                              const std::filesystem::path& scratch,
                                              const ExcludePatterns& excludes);

// The whole catalog step for one index image. A SQLite-only index (no configs dir) is kInvalid.
CatalogSelection CatalogImagesOfIndex(ProcessRunner& runner, const std::string& index_image,
                                      const stateroot::RegistryAccess& access,
                                      const std::filesystem::path& scratch,
                                      const std::map<std::string, std::string>& channels);

}  // namespace lca::precache
