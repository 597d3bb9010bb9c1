#include "formats/oci_layout.hpp"

#include <archive.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <optional>
#include <random>
#include <utility>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"
#include "common/unique_fd.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;

// index.json, manifests and configs are a few KiB; anything near this is not an image.
constexpr std::size_t kMaxMetadataBytes = std::size_t{16} << 20;
constexpr std::size_t kCopyBlock = std::size_t{1} << 20;

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string CorruptedMessage(const std::string& digest, const std::string& label) {
  return "blob " + digest + " of " + label + " is corrupted";
}

constexpr std::string_view kFetchAgain = "; fetch the seed image again";

bool IsIndexType(std::string_view mt) {
  return mt == kOciIndexMediaType || mt == kDockerManifestListMediaType;
}
bool IsManifestType(std::string_view mt) {
  return mt == kOciManifestMediaType || mt == kDockerManifestMediaType;
}

// Typed access to untrusted JSON: a wrong type is kInvalid naming the file, not a
// nlohmann::type_error.
const Json& Member(const Json& obj, std::string_view key, const std::string& where) {
  if (!obj.is_object()) throw Error(Errc::kInvalid, where + ": expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) {
    throw Error(Errc::kInvalid, where + ": \"" + std::string(key) + "\" is missing");
  }
  return *it;
}

std::string StringMember(const Json& obj, std::string_view key, const std::string& where) {
  const Json& v = Member(obj, key, where);
  if (!v.is_string()) {
    throw Error(Errc::kInvalid, where + ": \"" + std::string(key) + "\" is not a string");
  }
  return v.get<std::string>();
}

std::map<std::string, std::string> StringMap(const Json& v, const std::string& where) {
  std::map<std::string, std::string> out;
  if (v.is_null()) return out;
  if (!v.is_object()) throw Error(Errc::kInvalid, where + ": expected an object of strings");
  for (const auto& [k, val] : v.items()) {
    if (!val.is_string()) {
      throw Error(Errc::kInvalid, where + ": value of \"" + k + "\" is not a string");
    }
    out.emplace(k, val.get<std::string>());
  }
  return out;
}

OciDescriptor ParseDescriptor(const Json& j, const std::string& where) {
  OciDescriptor d;
  d.media_type = StringMember(j, "mediaType", where);
  d.digest = StringMember(j, "digest", where);
  const Json& size = Member(j, "size", where);
  if (!size.is_number_integer() || size.get<std::int64_t>() < 0) {
    throw Error(Errc::kInvalid, where + ": \"size\" is not a non-negative integer");
  }
  d.size = size.get<std::int64_t>();
  if (auto it = j.find("annotations"); it != j.end()) {
    d.annotations = StringMap(*it, where + ": annotations");
  }
  return d;
}

Json DescriptorJson(const OciDescriptor& d) {
  Json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.annotations.empty()) {
    j["annotations"] = Json::object();
    for (const auto& [k, v] : d.annotations) j["annotations"][k] = v;
  }
  return j;
}

std::string ReadMetadataFile(const fs::path& file, std::string_view what_to_do) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) {
    throw Error(Errc::kInvalid,
                file.string() + " cannot be read (" + ec.message() + ")" + std::string(what_to_do));
  }
  if (size > kMaxMetadataBytes) {
    throw Error(Errc::kInvalid, file.string() + " is " + std::to_string(size) +
                                    " bytes, too large for image metadata" +
                                    std::string(what_to_do));
  }
  return ReadFile(file);
}

// A small blob (index, manifest, config), checked against its descriptor before it is parsed.
Json ReadJsonBlob(const fs::path& layout, const OciDescriptor& d, const std::string& label) {
  fs::path path = BlobPath(layout, d.digest);
  if (d.size > static_cast<std::int64_t>(kMaxMetadataBytes)) {
    throw Error(Errc::kInvalid, label + " " + d.digest + " claims " + std::to_string(d.size) +
                                    " bytes, too large for image metadata");
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(Errc::kInvalid, "blob " + d.digest + " of " + label + " is missing (" +
                                    path.string() + ")" + std::string(kFetchAgain));
  }
  std::string data = ReadMetadataFile(path, kFetchAgain);
  if (static_cast<std::int64_t>(data.size()) != d.size) {
    throw Error(Errc::kInvalid, CorruptedMessage(d.digest, label) + ": size mismatch (expected " +
                                    std::to_string(d.size) + " bytes, got " +
                                    std::to_string(data.size()) + ")" + std::string(kFetchAgain));
  }
  Sha256 h;
  h.Update(data);
  if (std::string got = h.Digest(); got != d.digest) {
    throw Error(Errc::kInvalid, CorruptedMessage(d.digest, label) + ": digest mismatch (got " +
                                    got + ")" + std::string(kFetchAgain));
  }
  return ParseJson(data, path.string() + " (" + label + ")");
}

// The linux/<this arch> manifest of an image index.
OciDescriptor PickPlatform(const Json& index, const std::string& where) {
  const Json& manifests = Member(index, "manifests", where);
  if (!manifests.is_array()) throw Error(Errc::kInvalid, where + ": \"manifests\" is not a list");
  std::string arch = HostOciArchitecture();
  for (const Json& m : manifests) {
    auto p = m.find("platform");
    if (p == m.end() || !p->is_object()) continue;
    if (p->value("os", "") == "linux" && p->value("architecture", "") == arch) {
      return ParseDescriptor(m, where + ": manifests");
    }
  }
  throw Error(Errc::kNotFound, where + " has no image for linux/" + arch);
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 12; ++i) s += kDigits[rng() % 16];
  return s;
}

// sha256 of the decompressed stream of a gzip/zstd/xz file.
std::string UncompressedSha256(const fs::path& file) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), &archive_read_free);
  if (!a) throw std::bad_alloc();
  archive_read_support_format_raw(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_xz(a.get());
  auto fail = [&](const std::string& doing) {
    const char* m = archive_error_string(a.get());
    return Error(Errc::kInvalid, doing + " " + file.string() + ": " + (m ? m : "libarchive error"));
  };
  if (archive_read_open_filename(a.get(), file.c_str(), kCopyBlock) != ARCHIVE_OK) {
    throw fail("opening");
  }
  archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) throw fail("decompressing");
  Sha256 h;
  for (;;) {
    const void* data = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(a.get(), &data, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) throw fail("decompressing");
    h.Update(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
  }
  return h.Digest();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string HostOciArchitecture() {
  struct utsname u {};
  ::uname(&u);
  std::string_view m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64" || m == "arm64") return "arm64";
  if (m == "i386" || m == "i686") return "386";
  if (m.starts_with("armv")) return "arm";
  return std::string(m);  // ppc64le, s390x, riscv64 spell the same in Go
}

fs::path BlobPath(const fs::path& layout, const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  std::string_view hex = digest;
  if (!hex.starts_with(kPrefix) || (hex.remove_prefix(kPrefix.size()), hex.size() != 64) ||
      !IsLowerHex(hex)) {
    std::string shown = digest.substr(0, 100);
    throw Error(Errc::kInvalid, "invalid blob digest \"" + shown +
                                    "\": expected sha256: followed by 64 lowercase hex digits");
  }
  return layout / "blobs" / "sha256" / std::string(hex);
}

// ---------------------------------------------------------------------------------------------
// Sha256

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    throw Error(Errc::kInternal, "OpenSSL: cannot initialise SHA-256");
  }
}

Sha256::~Sha256() = default;

void Sha256::Update(std::span<const std::byte> data) {
  if (!data.empty() && EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) != 1) {
    throw Error(Errc::kInternal, "OpenSSL: SHA-256 update failed");
  }
}

void Sha256::Update(std::string_view data) {
  Update(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

std::string Sha256::Digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) {
    throw Error(Errc::kInternal, "OpenSSL: SHA-256 final failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out += kDigits[md[i] >> 4];
    out += kDigits[md[i] & 0xf];
  }
  return out;
}

std::string Sha256File(const fs::path& file) {
  FileSource src(file);
  Sha256 h;
  for (auto block = src.Read(); !block.empty(); block = src.Read()) h.Update(block);
  return h.Digest();
}

// ---------------------------------------------------------------------------------------------
// VerifyingSource

VerifyingSource::VerifyingSource(const fs::path& layout, const OciDescriptor& blob,
                                 std::string label)
    : blob_(blob), label_(std::move(label)) {
  fs::path path = BlobPath(layout, blob.digest);
  try {
    file_ = std::make_unique<FileSource>(path);
  } catch (const Error& e) {
    if (e.code() != Errc::kNotFound) throw;
    throw Error(Errc::kInvalid, "blob " + blob.digest + " of " + label_ + " is missing (" +
                                    path.string() + "): the layout is incomplete" +
                                    std::string(kFetchAgain));
  }
}

VerifyingSource::~VerifyingSource() = default;

std::span<const std::byte> VerifyingSource::Read() {
  if (verified_) return {};
  std::span<const std::byte> block = file_->Read();
  if (block.empty()) {
    Check();
    return {};
  }
  bytes_ += block.size();
  // Stop at once on an oversized blob rather than stream gigabytes of something else.
  if (bytes_ > static_cast<std::uint64_t>(blob_.size)) {
    throw Error(Errc::kInvalid, CorruptedMessage(blob_.digest, label_) +
                                    ": size mismatch (expected " + std::to_string(blob_.size) +
                                    " bytes, got more)" + std::string(kFetchAgain));
  }
  hash_.Update(block);
  return block;
}

void VerifyingSource::Finish() {
  while (!verified_) Read();
}

void VerifyingSource::Check() {
  if (bytes_ != static_cast<std::uint64_t>(blob_.size)) {
    throw Error(Errc::kInvalid, CorruptedMessage(blob_.digest, label_) +
                                    ": size mismatch (expected " + std::to_string(blob_.size) +
                                    " bytes, got " + std::to_string(bytes_) + ")" +
                                    std::string(kFetchAgain));
  }
  if (got_.empty()) got_ = hash_.Digest();
  if (got_ != blob_.digest) {
    throw Error(Errc::kInvalid, CorruptedMessage(blob_.digest, label_) + ": digest mismatch (got " +
                                    got_ + ")" + std::string(kFetchAgain));
  }
  verified_ = true;
}

// ---------------------------------------------------------------------------------------------
// ReadOciImage

OciImage ReadOciImage(const fs::path& layout, const std::string& tag) {
  const std::string not_layout =
      ": " + layout.string() + " is not a complete OCI layout (fetch it with skopeo copy)";
  fs::path marker = layout / "oci-layout";
  Json m = ParseJson(ReadMetadataFile(marker, not_layout), marker.string());
  std::string version = StringMember(m, "imageLayoutVersion", marker.string());
  if (!version.starts_with("1.")) {
    throw Error(Errc::kInvalid, marker.string() + ": unsupported imageLayoutVersion \"" + version +
                                    "\" (1.x expected)");
  }

  fs::path index_file = layout / "index.json";
  const std::string where = index_file.string();
  Json index = ParseJson(ReadMetadataFile(index_file, not_layout), where);
  const Json& manifests = Member(index, "manifests", where);
  if (!manifests.is_array()) throw Error(Errc::kInvalid, where + ": \"manifests\" is not a list");

  std::vector<OciDescriptor> entries;
  for (const Json& j : manifests) entries.push_back(ParseDescriptor(j, where + ": manifests"));
  std::optional<OciDescriptor> chosen;
  const std::string image = tag.empty() ? layout.string() : layout.string() + ":" + tag;
  if (tag.empty()) {
    if (entries.size() != 1) {
      throw Error(Errc::kInvalid, where + " lists " + std::to_string(entries.size()) +
                                      " images; name the one to use by its tag");
    }
    chosen = entries.front();
  } else {
    std::string tags;
    for (const OciDescriptor& d : entries) {
      auto it = d.annotations.find(std::string(kRefNameAnnotation));
      if (it == d.annotations.end()) continue;
      if (it->second == tag) {
        chosen = d;
        break;
      }
      tags += (tags.empty() ? "" : ", ") + it->second;
    }
    if (!chosen) {
      throw Error(Errc::kNotFound, "no image tagged \"" + tag + "\" in " + where +
                                       " (tags: " + (tags.empty() ? "none" : tags) + ")");
    }
  }

  if (IsIndexType(chosen->media_type)) {
    Json child_index = ReadJsonBlob(layout, *chosen, "image index of " + image);
    chosen = PickPlatform(child_index, "image index " + chosen->digest + " of " + image);
  }
  if (!IsManifestType(chosen->media_type)) {
    throw Error(Errc::kInvalid, where + ": " + image + " has media type \"" + chosen->media_type +
                                    "\", not an image manifest");
  }

  OciImage out;
  out.manifest = *chosen;
  const std::string manifest_label = "manifest of " + image;
  const std::string manifest_where =
      BlobPath(layout, chosen->digest).string() + " (" + manifest_label + ")";
  Json manifest = ReadJsonBlob(layout, *chosen, manifest_label);
  if (auto it = manifest.find("mediaType");
      it != manifest.end() && it->is_string() && !IsManifestType(it->get<std::string>())) {
    throw Error(Errc::kInvalid, manifest_where + ": mediaType \"" + it->get<std::string>() +
                                    "\" is not an image manifest");
  }
  OciDescriptor config =
      ParseDescriptor(Member(manifest, "config", manifest_where), manifest_where + ": config");
  out.config_digest = config.digest;
  const Json& layers = Member(manifest, "layers", manifest_where);
  if (!layers.is_array()) {
    throw Error(Errc::kInvalid, manifest_where + ": \"layers\" is not a list");
  }
  for (const Json& l : layers)
    out.layers.push_back(ParseDescriptor(l, manifest_where + ": layers"));

  const std::string config_label = "config of " + image;
  Json cfg = ReadJsonBlob(layout, config, config_label);
  if (auto c = cfg.find("config"); c != cfg.end() && c->is_object()) {
    if (auto l = c->find("Labels"); l != c->end()) {
      out.labels = StringMap(
          *l, BlobPath(layout, config.digest).string() + " (" + config_label + "): config.Labels");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OciLayoutWriter

OciLayoutWriter::OciLayoutWriter(fs::path layout) : layout_(std::move(layout)) {
  EnsureDir(layout_ / "blobs" / "sha256", 0755);
  if (!fs::exists(layout_ / "oci-layout")) {
    WriteFileAtomic(layout_ / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 0644);
  }
  if (!fs::exists(layout_ / "index.json")) {
    WriteFileAtomic(layout_ / "index.json", "{\"schemaVersion\":2,\"manifests\":[]}", 0644);
  }
}

OciDescriptor OciLayoutWriter::AddBlob(std::string_view data, std::string_view media_type) {
  Sha256 h;
  h.Update(data);
  OciDescriptor d{.media_type = std::string(media_type),
                  .digest = h.Digest(),
                  .size = static_cast<std::int64_t>(data.size()),
                  .annotations = {}};
  fs::path path = BlobPath(layout_, d.digest);
  std::error_code ec;
  // Content-addressed: an existing blob of the right size already holds these bytes.
  auto existing = fs::file_size(path, ec);
  if (ec || existing != data.size()) WriteFileAtomic(path, data, 0644);
  return d;
}

OciDescriptor OciLayoutWriter::AddBlobFile(const fs::path& file, std::string_view media_type,
                                           bool move) {
  OciDescriptor d{
      .media_type = std::string(media_type), .digest = {}, .size = 0, .annotations = {}};
  if (move) {
    d.digest = Sha256File(file);
    d.size = static_cast<std::int64_t>(fs::file_size(file));
    fs::path dest = BlobPath(layout_, d.digest);
    if (::rename(file.c_str(), dest.c_str()) == 0) {
      FsyncDir(dest.parent_path());
      return d;
    }
    if (errno != EXDEV)
      throw SystemError("moving " + file.string() + " to " + dest.string(), errno);
  }
  // Copy, hashing on the way, into a temp name in the blob directory; rename once the digest
  // (hence the name) is known.
  fs::path dir = layout_ / "blobs" / "sha256";
  fs::path tmp = dir / (".tmp-" + RandomSuffix());
  try {
    FileSource in(file, kCopyBlock);
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (out.get() < 0) throw SystemError("creating " + tmp.string(), errno);
    Sha256 h;
    for (auto block = in.Read(); !block.empty(); block = in.Read()) {
      h.Update(block);
      const std::byte* p = block.data();
      std::size_t left = block.size();
      while (left > 0) {
        ssize_t n = ::write(out.get(), p, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          throw SystemError("writing " + tmp.string(), errno);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
      }
      d.size += static_cast<std::int64_t>(block.size());
    }
    if (::fchmod(out.get(), 0644) != 0 || ::fsync(out.get()) != 0) {
      throw SystemError("writing " + tmp.string(), errno);
    }
    out.Close(tmp);
    d.digest = h.Digest();
    fs::path dest = BlobPath(layout_, d.digest);
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
      throw SystemError("renaming " + tmp.string() + " to " + dest.string(), errno);
    }
    FsyncDir(dir);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (move) fs::remove(file);
  return d;
}

OciLayer OciLayoutWriter::AddLayerFile(const fs::path& file, std::string_view media_type,
                                       bool move) {
  std::string diff_id;
  bool compressed = media_type.ends_with("+gzip") || media_type.ends_with("+zstd") ||
                    media_type.ends_with(".tar.gzip") || media_type.ends_with(".tar.zstd");
  if (compressed) diff_id = UncompressedSha256(file);
  OciLayer layer{.descriptor = AddBlobFile(file, media_type, move), .diff_id = {}};
  layer.diff_id = compressed ? diff_id : layer.descriptor.digest;
  return layer;
}

OciDescriptor OciLayoutWriter::AddImage(const std::string& tag, const std::vector<OciLayer>& layers,
                                        const std::map<std::string, std::string>& labels) {
  if (tag.empty()) throw Error(Errc::kInvalid, "an image in an OCI layout needs a tag");
  const std::string created = FormatTime(Now());
  Json label_json = Json::object();
  for (const auto& [k, v] : labels) label_json[k] = v;
  Json diff_ids = Json::array();
  Json history = Json::array();
  Json layer_descriptors = Json::array();
  for (const OciLayer& l : layers) {
    diff_ids.push_back(l.diff_id);
    history.push_back({{"created", created}, {"created_by", "lca seed creation"}});
    layer_descriptors.push_back(DescriptorJson(l.descriptor));
  }
  Json config = {{"created", created},
                 {"architecture", HostOciArchitecture()},
                 {"os", "linux"},
                 {"config", {{"Labels", label_json}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                 {"history", history}};
  OciDescriptor config_desc = AddBlob(config.dump(), kOciConfigMediaType);
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", kOciManifestMediaType},
                   {"config", DescriptorJson(config_desc)},
                   {"layers", layer_descriptors}};
  OciDescriptor manifest_desc = AddBlob(manifest.dump(), kOciManifestMediaType);

  fs::path index_file = layout_ / "index.json";
  Json index = ParseJson(ReadFile(index_file), index_file.string());
  Json kept = Json::array();
  if (auto it = index.find("manifests"); it != index.end() && it->is_array()) {
    for (const Json& m : *it) {
      const Json* ann = m.contains("annotations") ? &m["annotations"] : nullptr;
      bool same_tag = ann != nullptr && ann->is_object() &&
                      ann->value(std::string(kRefNameAnnotation), "") == tag;
      if (!same_tag) kept.push_back(m);
    }
  }
  OciDescriptor entry = manifest_desc;
  entry.annotations[std::string(kRefNameAnnotation)] = tag;
  kept.push_back(DescriptorJson(entry));
  Json new_index = {{"schemaVersion", 2}, {"manifests", kept}};
  WriteFileAtomic(index_file, new_index.dump(), 0644);
  return manifest_desc;
}

}  // namespace lca::stateroot
