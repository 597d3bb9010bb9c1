#pragma once
// OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md): the
// on-disk form a seed image is fetched into once (skopeo copy … oci:<dir>:<tag>) and read from
// with digests checked, and the form seed creation writes before pushing.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/archive.hpp"

namespace lca::stateroot {

inline constexpr std::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifestMediaType =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfigMediaType = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerGzipMediaType =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerTarMediaType = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kDockerManifestListMediaType =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifestMediaType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfigMediaType =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzipMediaType =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
// The index.json annotation that carries a tag.
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct OciDescriptor {
  std::string media_type;
  std::string digest;  // "sha256:<64 lowercase hex>"
  std::int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

struct OciImage {
  OciDescriptor manifest;  // as listed in index.json (or in the image index it points to)
  std::string config_digest;
  std::map<std::string, std::string> labels;  // config.config.Labels
  std::vector<OciDescriptor> layers;          // in order, base first
};

// Reads <layout>/oci-layout (imageLayoutVersion 1.x), index.json, the manifest and the config,
// checking each blob's digest and size. The image is the index entry annotated with `tag`, or
// with an empty `tag` the only entry. An entry that is itself an image index (multi-arch) is
// resolved to the linux manifest for this machine's architecture. OCI and Docker schema 2 media
// types are both accepted. A missing or garbled file is kInvalid naming the file; an unknown
// tag is kNotFound listing the tags there are.
OciImage ReadOciImage(const std::filesystem::path& layout, const std::string& tag);

// <layout>/blobs/sha256/<hex>. The digest must be "sha256:" + 64 lowercase hex digits, else
// kInvalid: a digest from a manifest is untrusted input and must not be a path.
std::filesystem::path BlobPath(const std::filesystem::path& layout, const std::string& digest);

// Streaming SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const std::byte> data);
  void Update(std::string_view data);
  // "sha256:<hex>". Call once.
  std::string Digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of a file, read in large blocks.
std::string Sha256File(const std::filesystem::path& file);

// An ArchiveSource over a blob file that hashes every byte it hands out. At the end of the file
// (or on Finish(), which reads what the consumer left) it throws kInvalid
//   "blob sha256:… of <label> is corrupted: digest mismatch (got sha256:…)…"
// when the content is not the digest, and "…: size mismatch…" when the size is not the
// descriptor's (as soon as the file runs past it). Data handed out before that point is NOT yet
// verified: extract into a place that is discarded when this throws.
class VerifyingSource final : public ArchiveSource {
 public:
  // `blob` gives the digest and size; the file is BlobPath(layout, blob.digest). A missing blob
  // is kInvalid (the layout is incomplete).
  VerifyingSource(const std::filesystem::path& layout, const OciDescriptor& blob,
                  std::string label);
  ~VerifyingSource() override;

  std::span<const std::byte> Read() override;
  void Finish() override;
  void CheckAfterError() override { Finish(); }

  std::uint64_t bytes_read() const { return bytes_; }

 private:
  void Check();

  OciDescriptor blob_;
  std::string label_;
  std::unique_ptr<FileSource> file_;
  Sha256 hash_;
  std::uint64_t bytes_ = 0;
  std::string got_;  // the computed digest, once the end was reached
  bool verified_ = false;
};

struct OciLayer {
  OciDescriptor descriptor;
  std::string diff_id;  // sha256 of the uncompressed tar, for the config's rootfs.diff_ids
};

// Writes an OCI layout for seed creation: blobs by content, then a config (with labels), a
// manifest and an index.json entry tagged `tag`. Blobs and index.json are written to a temp
// file and renamed, so a reader never sees half a blob.
class OciLayoutWriter {
 public:
  // Creates the layout (oci-layout, blobs/sha256) if needed; an existing one keeps its blobs and
  // tags.
  explicit OciLayoutWriter(std::filesystem::path layout);

  const std::filesystem::path& layout() const { return layout_; }

  OciDescriptor AddBlob(std::string_view data, std::string_view media_type);
  // Hashes `file` and stores it as a blob: renamed into place when `move` (falling back to a
  // copy across filesystems), else copied.
  OciDescriptor AddBlobFile(const std::filesystem::path& file, std::string_view media_type,
                            bool move = false);
  // AddBlobFile plus the layer's diff_id (a gzip/zstd layer is decompressed once to hash it).
  OciLayer AddLayerFile(const std::filesystem::path& file,
                        std::string_view media_type = kOciLayerGzipMediaType, bool move = false);

  // Writes the config (linux, this machine's architecture, `labels`, the layers' diff_ids) and
  // the OCI manifest, and points `tag` at it in index.json (replacing what it pointed to).
  // Returns the manifest's descriptor.
  OciDescriptor AddImage(const std::string& tag, const std::vector<OciLayer>& layers,
                         const std::map<std::string, std::string>& labels);

 private:
  std::filesystem::path layout_;
};

// The OCI/Go name of this machine's architecture (amd64, arm64, ppc64le, s390x, …).
std::string HostOciArchitecture();

}  // namespace lca::stateroot
