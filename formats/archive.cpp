#include "formats/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "formats/extract_policy.hpp"
#include "formats/file_writer_pool.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kProgressStep = std::uint64_t{8} << 20;
constexpr std::size_t kCopyBlock = std::size_t{1} << 20;
// Beyond this many, metadata warnings are only counted: a filesystem that refuses xattrs would
// otherwise log one line per file of a multi-GB tree.
constexpr std::uint64_t kMaxLoggedWarnings = 10;

// Entry names come from the archive: quote them and escape anything unprintable, so a hostile
// name cannot forge log lines or hide in an error message.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string ArchiveMessage(archive* a) {
  const char* m = archive_error_string(a);
  return m != nullptr && *m != '\0' ? m : "unknown libarchive error";
}

std::string EntryPath(archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  return p != nullptr ? p : "";
}

[[noreturn]] void Refuse(const std::string& label, std::string_view entry, std::string_view why) {
  throw Error(Errc::kInvalid, label + ": entry " + Quote(entry) + " " + std::string(why) +
                                  ": refusing to extract the archive (it is unsafe or corrupt; "
                                  "rebuild it without this entry)");
}

// Splits an archive path on '/', dropping empty and "." components ("./a//b/" -> a, b).
std::vector<std::string_view> Components(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    if (!c.empty() && c != ".") out.push_back(c);
    start = end + 1;
  }
  return out;
}

std::string NormalizedName(std::string_view path) {
  std::string out;
  for (std::string_view c : Components(path)) {
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

// `path` (an entry's name or a hardlink's target) as a path relative to the destination; ""
// is the destination itself. Refuses absolute paths and "..": checked here, with a message,
// rather than left to libarchive's terser SECURE_* errors.
std::string SafeRelative(std::string_view path, std::string_view what, const std::string& label,
                         std::string_view entry) {
  if (path.empty()) Refuse(label, entry, "has an empty " + std::string(what));
  if (path.front() == '/') {
    Refuse(label, entry, "has an absolute " + std::string(what) + " " + Quote(path));
  }
  std::string out;
  for (std::string_view c : Components(path)) {
    if (c == "..") {
      Refuse(label, entry,
             "has a \"..\" component in its " + std::string(what) + " " + Quote(path));
    }
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

// Whether a symlink at `rel` (relative to the destination) pointing to `target` stays inside
// the destination. Lexical on purpose: nothing is ever written through a symlink (libarchive's
// SECURE_SYMLINKS), so what matters is where the link points for whoever follows it later. An
// absolute target is read as the tree's own root, as in a chroot, so it is inside.
bool SymlinkStaysInside(std::string_view rel, std::string_view target) {
  if (target.front() == '/') return true;
  std::size_t depth = Components(rel).size() - 1;  // the directory holding the link
  for (std::string_view c : Components(target)) {
    if (c == "..") {
      if (depth == 0) return false;
      --depth;
    } else {
      ++depth;
    }
  }
  return true;
}

// The first component of `rel` (not the last) that is a symlink on disk under `root`.
std::optional<std::string> SymlinkOnTheWay(const fs::path& root, std::string_view rel) {
  std::vector<std::string_view> parts = Components(rel);
  fs::path at = root;
  std::string sofar;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    at /= std::string(parts[i]);
    if (!sofar.empty()) sofar += '/';
    sofar += parts[i];
    struct stat st {};
    if (::lstat(at.c_str(), &st) != 0) return std::nullopt;
    if (S_ISLNK(st.st_mode)) return sofar;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Reading

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ReadDeleter>;

// What libarchive's read callback reads from. libarchive is C: an exception must not unwind
// through it, so the callback parks the source's exception here and the caller rethrows it when
// the libarchive call fails.
struct CallbackSource {
  ArchiveSource* src = nullptr;
  std::exception_ptr error;
};

la_ssize_t ReadCallback(archive* a, void* ctx_ptr, const void** buffer) {
  auto* ctx = static_cast<CallbackSource*>(ctx_ptr);
  try {
    std::span<const std::byte> block = ctx->src->Read();
    *buffer = block.data();
    return static_cast<la_ssize_t>(block.size());
  } catch (...) {
    ctx->error = std::current_exception();
    archive_set_error(a, EIO, "%s", "reading the archive's source failed");
    return ARCHIVE_FATAL;
  }
}

ReadArchive NewReadArchive() {
  ReadArchive a(archive_read_new());
  if (!a) throw std::bad_alloc();
  return a;
}

// A source whose first block was already read (to sniff the compression): hands that block out
// again, then reads on. The block stays valid because the inner source is not read meanwhile.
class PrefixedSource final : public ArchiveSource {
 public:
  PrefixedSource(ArchiveSource& inner, std::span<const std::byte> first)
      : inner_(inner), first_(first), pending_(true) {}
  std::span<const std::byte> Read() override {
    if (pending_) {
      pending_ = false;
      if (!first_.empty()) return first_;
    }
    return inner_.Read();
  }
  void Finish() override { inner_.Finish(); }
  void CheckAfterError() override { inner_.CheckAfterError(); }

 private:
  ArchiveSource& inner_;
  std::span<const std::byte> first_;
  bool pending_;
};

// Decompression runs on its own thread, so inflating (and whatever the compressed source does:
// reading the blob, hashing it, parsing an outer layer) overlaps the syscalls of extraction, as
// `tar xzf` overlaps with its gzip child. The thread reads `compressed` through libarchive's
// "raw" format, which only strips the compression, and hands 1 MiB blocks over a short queue.
class Inflater final : public ArchiveSource {
 public:
  Inflater(ArchiveSource& compressed, const std::string& label)
      : compressed_(compressed), label_(label), thread_([this] { Run(); }) {}
  ~Inflater() override { Stop(); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  std::span<const std::byte> Read() override {
    std::unique_lock lock(mu_);
    if (has_current_) {
      free_.push_back(std::move(current_));
      has_current_ = false;
    }
    cv_.wait(lock, [&] { return !full_.empty() || done_; });
    if (full_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return {};
    }
    current_ = std::move(full_.front());
    full_.pop_front();
    has_current_ = true;
    lock.unlock();
    cv_.notify_all();
    return {current_.data(), current_.size()};
  }

  // The tar ended: what is left is padding, so stop inflating and let the compressed source
  // finish (a VerifyingSource reads the rest of its blob raw, without decompressing it).
  void Finish() override {
    Stop();
    compressed_.Finish();
  }

  void CheckAfterError() override {
    Stop();
    compressed_.CheckAfterError();
  }

 private:
  static constexpr std::size_t kQueueDepth = 4;

  void Run() {
    try {
      Inflate();
    } catch (...) {
      std::lock_guard lock(mu_);
      error_ = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }

  void Inflate() {
    // gzip (every seed tarball, most layers) goes through ISA-L's inflate, about four times
    // zlib's speed here: decompression is the extraction's critical path once the writes run on
    // their own threads. Anything else goes through libarchive's filters.
    std::span<const std::byte> first = compressed_.Read();
    if (first.size() >= 3 && first[0] == std::byte{0x1f} && first[1] == std::byte{0x8b} &&
        first[2] == std::byte{0x08}) {
      InflateGzip(first);
      return;
    }
    PrefixedSource prefixed(compressed_, first);
    CallbackSource ctx{&prefixed, nullptr};
    ReadArchive a = NewReadArchive();
    archive_read_support_format_raw(a.get());
    // In-process decompressors only: filter_all would also register helpers that exec
    // external programs.
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_bzip2(a.get());
    archive_read_support_filter_xz(a.get());
    archive_read_support_filter_lzma(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_filter_lz4(a.get());
    auto fail = [&](std::string_view doing) {
      if (ctx.error) std::rethrow_exception(ctx.error);
      std::string message = ArchiveMessage(a.get());
      compressed_.CheckAfterError();  // a digest mismatch explains bad gzip data best
      throw Error(Errc::kInvalid, label_ + ": " + std::string(doing) + ": " + message +
                                      " (corrupt or truncated archive; fetch it again)");
    };
    if (archive_read_open(a.get(), &ctx, nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
      fail("opening the archive");
    }
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN) fail("opening the archive");
    std::vector<std::byte> block = TakeFree();
    for (;;) {
      const void* data = nullptr;
      std::size_t size = 0;
      la_int64_t offset = 0;
      rc = archive_read_data_block(a.get(), &data, &size, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) fail("decompressing");
      const auto* p = static_cast<const std::byte*>(data);
      block.insert(block.end(), p, p + size);
      if (block.size() >= kCopyBlock) {
        if (!Push(block)) return;
        block = TakeFree();
      }
    }
    if (!block.empty()) Push(block);
  }

  // One or more gzip members (RFC 1952: concatenated members are one stream), each member's
  // CRC-32 checked by ISA-L. Bytes after the last member that do not start another one (the
  // magic 1f 8b) are ignored, as gzip(1) and libarchive do; the blob's digest still covers them.
  void InflateGzip(std::span<const std::byte> in) {
    auto state = std::make_unique<inflate_state>();
    isal_inflate_init(state.get());
    state->crc_flag = ISAL_GZIP;
    auto fail = [&](std::string why) {
      compressed_.CheckAfterError();  // a digest mismatch explains bad gzip data best
      throw Error(Errc::kInvalid, label_ + ": decompressing: " + why +
                                      " (corrupt or truncated archive; fetch it again)");
    };
    std::vector<std::byte> block = TakeFree();
    block.resize(kCopyBlock);
    std::size_t filled = 0;
    auto feed = [&](std::span<const std::byte> bytes) {
      state->next_in = reinterpret_cast<std::uint8_t*>(const_cast<std::byte*>(bytes.data()));
      state->avail_in = static_cast<std::uint32_t>(bytes.size());
    };
    // ISA-L counts input in 32 bits: hand it at most 1 GiB of a block at a time.
    std::span<const std::byte> rest;
    auto next_input = [&]() -> bool {
      if (rest.empty()) rest = compressed_.Read();
      if (rest.empty()) return false;
      std::size_t n = std::min<std::size_t>(rest.size(), std::size_t{1} << 30);
      feed(rest.first(n));
      rest = rest.subspan(n);
      return true;
    };
    rest = in;
    if (!next_input()) return;
    for (;;) {
      if (state->block_state == ISAL_BLOCK_FINISH) {
        if (state->avail_in == 0 && !next_input()) break;
        if (*state->next_in != 0x1f) break;  // trailing bytes, not another member
        // The magic's second byte may be the first of the next read.
        if (state->avail_in == 1 && rest.empty()) rest = compressed_.Read();
        const auto second = state->avail_in > 1 ? state->next_in[1]
                            : rest.empty()      ? std::uint8_t{0}
                                                : static_cast<std::uint8_t>(rest[0]);
        if (second != 0x8b) break;
        std::uint8_t* next_in = state->next_in;
        std::uint32_t avail_in = state->avail_in;
        isal_inflate_reset(state.get());
        state->crc_flag = ISAL_GZIP;
        state->next_in = next_in;
        state->avail_in = avail_in;
      }
      state->next_out = reinterpret_cast<std::uint8_t*>(block.data() + filled);
      state->avail_out = static_cast<std::uint32_t>(kCopyBlock - filled);
      int rc = isal_inflate(state.get());
      if (rc != ISAL_DECOMP_OK) fail(IsalMessage(rc));
      filled = kCopyBlock - state->avail_out;
      if (filled == kCopyBlock) {
        if (!Push(block)) return;
        block = TakeFree();
        block.resize(kCopyBlock);
        filled = 0;
      }
      if (state->block_state != ISAL_BLOCK_FINISH && state->avail_in == 0 && state->avail_out > 0 &&
          !next_input()) {
        fail("unexpected end of gzip data");
      }
    }
    block.resize(filled);
    if (!block.empty()) Push(block);
  }

  static std::string IsalMessage(int rc) {
    switch (rc) {
      case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
      case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
      case ISAL_INVALID_LOOKBACK:
        return "invalid deflate distance";
      case ISAL_INVALID_WRAPPER:
        return "invalid gzip header";
      case ISAL_UNSUPPORTED_METHOD:
        return "unsupported gzip compression method";
      case ISAL_INCORRECT_CHECKSUM:
        return "gzip CRC-32 mismatch";
      default:
        return "ISA-L inflate error " + std::to_string(rc);
    }
  }

  std::vector<std::byte> TakeFree() {
    std::vector<std::byte> out;
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        out = std::move(free_.back());
        free_.pop_back();
      }
    }
    out.clear();
    out.reserve(kCopyBlock + 64 * 1024);
    return out;
  }

  // False when the consumer asked to stop.
  bool Push(std::vector<std::byte>& block) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return full_.size() < kQueueDepth || stop_; });
    if (stop_) return false;
    full_.push_back(std::move(block));
    lock.unlock();
    cv_.notify_all();
    return true;
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  ArchiveSource& compressed_;
  const std::string label_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::byte>> full_;
  std::vector<std::vector<std::byte>> free_;
  std::vector<std::byte> current_;  // the block the consumer holds
  bool has_current_ = false;
  bool done_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: it starts running once everything above exists
};

// A tar reader over an ArchiveSource, decompressing on an Inflater thread.
class Reader {
 public:
  Reader(ArchiveSource& src, std::string label)
      : label_(std::move(label)),
        inflater_(std::make_unique<Inflater>(src, label_)),
        ctx_{inflater_.get(), nullptr},
        a_(NewReadArchive()) {
    // Tar only: a seed holds nothing else. The stream arrives decompressed.
    archive_read_support_format_tar(a_.get());
    if (archive_read_open(a_.get(), &ctx_, nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
      Fail("opening the archive");
    }
  }

  archive* get() const { return a_.get(); }
  const std::string& label() const { return label_; }

  // See ArchiveSource.
  void Finish() { inflater_->Finish(); }
  void CheckAfterError() { inflater_->CheckAfterError(); }

  // Throws the reason a libarchive call on this reader failed: the source's own error if it
  // raised one, else the source's verdict on its bytes (a digest mismatch explains a corrupt
  // stream better than libarchive does), else libarchive's message as kInvalid.
  [[noreturn]] void Fail(std::string_view doing) {
    if (ctx_.error) std::rethrow_exception(ctx_.error);
    std::string message = ArchiveMessage(a_.get());
    CheckAfterError();
    throw Error(Errc::kInvalid, label_ + ": " + std::string(doing) + ": " + message +
                                    " (corrupt or truncated archive; fetch it again)");
  }

 private:
  std::string label_;
  std::unique_ptr<Inflater> inflater_;  // outlives a_, whose callback reads from it
  CallbackSource ctx_;
  ReadArchive a_;
};

TarEntryType TypeOf(archive_entry* e) {
  if (archive_entry_hardlink(e) != nullptr) return TarEntryType::kHardlink;
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      return TarEntryType::kFile;
    case AE_IFDIR:
      return TarEntryType::kDirectory;
    case AE_IFLNK:
      return TarEntryType::kSymlink;
    default:
      return TarEntryType::kOther;
  }
}

// Logs the first few metadata warnings of an extraction and counts all of them. With
// `xattrs_fatal` (SELinux enabled on the host) an extended attribute that could not be written
// is an error instead.
class Warnings {
 public:
  Warnings(const std::string& label, ExtractStats& stats, bool xattrs_fatal = false)
      : label_(label), stats_(stats), xattrs_fatal_(xattrs_fatal) {}
  ~Warnings() {
    if (stats_.warnings > kMaxLoggedWarnings) {
      spdlog::warn("{}: {} metadata warnings in all, {} not shown", label_, stats_.warnings,
                   stats_.warnings - kMaxLoggedWarnings);
    }
  }
  Warnings(const Warnings&) = delete;
  Warnings& operator=(const Warnings&) = delete;

  void Add(std::string_view entry, const std::string& message) {
    // Both libarchive's and the writer pool's texts say "extended attribute".
    if (xattrs_fatal_ && message.find("xtended attribute") != std::string::npos) {
      throw Error(Errc::kIo, label_ + ": entry " + Quote(entry) + ": " + message +
                                 " (SELinux is enabled on this host: every security label and "
                                 "extended attribute of the seed must be written)");
    }
    if (++stats_.warnings <= kMaxLoggedWarnings) {
      spdlog::warn("{}: entry {}: {}", label_, Quote(entry), message);
    }
  }

 private:
  const std::string& label_;
  ExtractStats& stats_;
  bool xattrs_fatal_;
};

struct WriteDiskDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

// The checks that run before anything is written for an entry. Returns the entry's path
// relative to `root` and points the entry (and a hardlink's target) at absolute paths under it.
std::string CheckAndRewrite(archive_entry* e, const std::string& raw, const fs::path& root,
                            const std::string& label, const ExtractOptions& opts) {
  std::string rel = SafeRelative(raw, "path", label, raw);
  TarEntryType type = TypeOf(e);
  switch (archive_entry_filetype(e)) {
    case AE_IFCHR:
      Refuse(label, raw, "is a character device");
    case AE_IFBLK:
      Refuse(label, raw, "is a block device");
    case AE_IFIFO:
      Refuse(label, raw, "is a FIFO");
    case AE_IFSOCK:
      Refuse(label, raw, "is a socket");
    default:
      break;
  }
  if (type == TarEntryType::kOther) Refuse(label, raw, "has an unknown file type");
  if (rel.empty() && type != TarEntryType::kDirectory) {
    Refuse(label, raw, "names the destination itself but is not a directory");
  }

  fs::path full = rel.empty() ? root : root / rel;
  // libarchive handles a longer path by chdir()ing into it, which would move the working
  // directory of every thread in the daemon.
  if (full.native().size() >= PATH_MAX) Refuse(label, raw, "has a path longer than PATH_MAX");

  if (type == TarEntryType::kSymlink) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr || *target == '\0') Refuse(label, raw, "is a symlink with no target");
    if (!opts.allow_escaping_symlinks && !SymlinkStaysInside(rel, target)) {
      Refuse(label, raw,
             "is a symlink to " + Quote(target) + ", which points outside the destination");
    }
  }
  if (type == TarEntryType::kHardlink) {
    std::string target_rel = SafeRelative(archive_entry_hardlink(e), "hardlink target", label, raw);
    if (target_rel.empty()) Refuse(label, raw, "is a hardlink to the destination itself");
    // A hardlink entry with data would be written into the inode it links to, which may also
    // have names outside the destination (an ostree checkout shares inodes with the repo).
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
      Refuse(label, raw, "is a hardlink that carries data");
    }
    fs::path target_full = root / target_rel;
    if (target_full.native().size() >= PATH_MAX) {
      Refuse(label, raw, "has a hardlink target longer than PATH_MAX");
    }
    archive_entry_copy_hardlink(e, target_full.c_str());
  }
  archive_entry_copy_pathname(e, full.c_str());
  return rel;
}

// archive_write_header failed: say why in our words where we can.
[[noreturn]] void HeaderFailed(archive* out, archive_entry* e, const std::string& raw,
                               const std::string& rel, const fs::path& root,
                               const std::string& label) {
  std::string message = ArchiveMessage(out);
  if (auto link = SymlinkOnTheWay(root, rel)) {
    Refuse(label, raw, "would be written through the symlink " + Quote(*link));
  }
  if (const char* hl = archive_entry_hardlink(e); hl != nullptr) {
    std::string target_rel = fs::path(hl).lexically_relative(root).generic_string();
    if (auto link = SymlinkOnTheWay(root, target_rel)) {
      Refuse(label, raw, "is a hardlink reached through the symlink " + Quote(*link));
    }
    struct stat st {};
    if (::lstat(hl, &st) != 0) {
      Refuse(label, raw,
             "is a hardlink to " + Quote(target_rel) +
                 ", which does not exist (it must come earlier in the archive)");
    }
  }
  throw Error(Errc::kIo, label + ": extracting entry " + Quote(raw) + ": " + message);
}

void ReportProgress(const ExtractOptions& opts, std::uint64_t bytes, std::uint64_t& reported) {
  if (opts.progress && bytes - reported >= kProgressStep) {
    reported = bytes;
    opts.progress(bytes);
  }
}

// Canonical, so libarchive's symlink check never trips on (or trusts) a symlink in the
// destination's own path, e.g. /ostree -> sysroot/ostree. Checked before the archive is opened,
// so a bad destination consumes nothing from the source.
fs::path ExtractionRoot(const fs::path& dest, const std::string& label) {
  std::error_code ec;
  fs::path root = fs::canonical(dest, ec);
  if (ec || !fs::is_directory(root, ec)) {
    throw Error(Errc::kNotFound, label + ": extraction destination " + dest.string() +
                                     " is not an existing directory");
  }
  return root;
}

// Directories of the destination as fds, opened one component at a time with O_NOFOLLOW from
// the root's fd, for the jobs of the file writers. A missing directory is made (0755, as
// libarchive makes the parents an archive does not list).
class DirCache {
 public:
  DirCache(const fs::path& root, const std::string& label) : root_(root), label_(label) {
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw SystemError(label + ": opening the destination " + root.string(), errno);
    root_fd_ = std::make_shared<const UniqueFd>(fd);
  }

  // `dir` relative to the root ("" is the root); `raw` names the entry that needs it.
  std::shared_ptr<const UniqueFd> Get(const std::string& dir, const std::string& raw) {
    if (dir.empty()) return root_fd_;
    if (auto it = fds_.find(dir); it != fds_.end()) return it->second;
    std::size_t slash = dir.rfind('/');
    std::string parent_rel = slash == std::string::npos ? "" : dir.substr(0, slash);
    std::string base = slash == std::string::npos ? dir : dir.substr(slash + 1);
    std::shared_ptr<const UniqueFd> parent = Get(parent_rel, raw);
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(parent->get(), base.c_str(), flags);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(parent->get(), base.c_str(), 0755) != 0 && errno != EEXIST) {
        throw SystemError(
            label_ + ": extracting entry " + Quote(raw) + ": making directory " + Quote(dir),
            errno);
      }
      fd = ::openat(parent->get(), base.c_str(), flags);
    }
    if (fd < 0) {
      int err = errno;
      if (auto link = SymlinkOnTheWay(root_, dir + "/x")) {
        Refuse(label_, raw, "would be written through the symlink " + Quote(*link));
      }
      if (err == ENOTDIR) {
        throw Error(Errc::kIo, label_ + ": extracting entry " + Quote(raw) + ": " + Quote(dir) +
                                   " is in the way and is not a directory");
      }
      throw SystemError(
          label_ + ": extracting entry " + Quote(raw) + ": opening directory " + Quote(dir), err);
    }
    if (fds_.size() >= kMaxCached) fds_.clear();  // jobs in flight keep theirs open
    auto shared = std::make_shared<const UniqueFd>(fd);
    fds_.emplace(dir, shared);
    return shared;
  }

  // `rel` was replaced by something that is not that directory: forget it and what was under it.
  void Forget(const std::string& rel) {
    std::erase_if(fds_, [&](const auto& kv) {
      return kv.first == rel || (kv.first.size() > rel.size() && kv.first[rel.size()] == '/' &&
                                 kv.first.compare(0, rel.size(), rel) == 0);
    });
  }

 private:
  static constexpr std::size_t kMaxCached = 512;
  const fs::path root_;
  const std::string& label_;
  std::shared_ptr<const UniqueFd> root_fd_;
  std::unordered_map<std::string, std::shared_ptr<const UniqueFd>> fds_;
};

unsigned WriterThreads(const ExtractOptions& opts) {
  if (opts.writer_threads > 0) return opts.writer_threads;
  return std::clamp(std::thread::hardware_concurrency(), 2u, 4u);
}

// Files up to this size go to the writer threads, whole; bigger ones are streamed to disk by
// the reader (they are few, and their time is in the bytes, not the inode).
constexpr std::int64_t kMaxQueuedFile = std::int64_t{4} << 20;
constexpr std::size_t kMaxInFlight = std::size_t{64} << 20;

bool HasAcls(archive_entry* e) {
  return archive_entry_acl_count(e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT |
                                        ARCHIVE_ENTRY_ACL_TYPE_NFS4) != 0;
}

// How an entry is written. kQueued: a small regular file or a symlink, by a writer thread.
// kStreamed: a bigger regular file, by the reader itself, straight from the archive's blocks.
// kLibarchive: directories, hardlinks and files with ACLs (libarchive restores ACLs), and the
// destination itself.
enum class Route { kQueued, kStreamed, kLibarchive };

Route RouteOf(archive_entry* e, TarEntryType type, const std::string& rel) {
  if (rel.empty()) return Route::kLibarchive;
  if (type == TarEntryType::kSymlink) return Route::kQueued;
  if (type != TarEntryType::kFile || HasAcls(e)) return Route::kLibarchive;
  return archive_entry_size(e) > kMaxQueuedFile ? Route::kStreamed : Route::kQueued;
}

std::pair<std::string, std::string> SplitParent(const std::string& rel) {
  std::size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// Calls fn(data, size, offset) for each block of the current entry's data.
template <typename Fn>
void ForEachDataBlock(Reader& reader, const std::string& raw, Fn&& fn) {
  for (;;) {
    const void* data = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(reader.get(), &data, &size, &offset);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN) reader.Fail("reading the data of entry " + Quote(raw));
    fn(data, size, offset);
  }
}

// The entry's extended attributes, as (name, value).
std::vector<std::pair<std::string, std::string>> XattrsOf(archive_entry* e) {
  std::vector<std::pair<std::string, std::string>> out;
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    out.emplace_back(name, std::string(static_cast<const char*>(value), size));
  }
  return out;
}

// A job for a writer (or for the reader's own streamed write), data not yet read.
FileJob JobFor(archive_entry* e, TarEntryType type, std::shared_ptr<const UniqueFd> dir,
               std::string name, const std::string& raw, const ExtractOptions& opts) {
  FileJob job;
  job.kind = type == TarEntryType::kSymlink ? FileJob::Kind::kSymlink : FileJob::Kind::kFile;
  job.dir = std::move(dir);
  job.name = std::move(name);
  job.entry = Quote(raw);
  job.mode = archive_entry_perm(e);
  if (opts.preserve_owner) {
    job.owner = {static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e))};
  }
  if (archive_entry_mtime_is_set(e)) {
    timespec mtime{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    timespec atime = mtime;
    if (archive_entry_atime_is_set(e)) {
      atime = {archive_entry_atime(e), archive_entry_atime_nsec(e)};
    }
    job.times = {atime, mtime};
  }
  if (opts.xattrs) job.xattrs = XattrsOf(e);
  if (job.kind == FileJob::Kind::kSymlink) {
    job.target = archive_entry_symlink(e);
  } else {
    job.size = archive_entry_size(e);
  }
  return job;
}

// What one extraction holds while it runs: the libarchive writer, the directory fds, the writer
// threads, and which queued entries are not written yet.
class Extraction {
 public:
  Extraction(Reader& reader, const fs::path& root, const ExtractOptions& opts)
      : reader_(reader),
        label_(reader.label()),
        root_(root),
        opts_(opts),
        out_(archive_write_disk_new()),
        warnings_(label_, stats_, opts.xattrs && opts.selinux_enabled),
        dirs_(root, label_),
        pool_(label_, WriterThreads(opts), kMaxInFlight) {
    if (!out_) throw std::bad_alloc();
    // Not FFLAGS: an immutable bit from a seed must not land on the host. Not UNLINK: with it,
    // SECURE_SYMLINKS removes a symlink in the way instead of refusing to write through it. Not
    // SECURE_NOABSOLUTEPATHS: entries are rewritten to absolute paths under `root` (libarchive
    // has no base-directory API and chdir is process-wide); absolute names were refused above.
    // Not XATTR: Xattrs() restores them, so each failure is judged by its own errno.
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                ARCHIVE_EXTRACT_SECURE_SYMLINKS;
    if (opts.preserve_owner) flags |= ARCHIVE_EXTRACT_OWNER;
    if (opts.xattrs) flags |= ARCHIVE_EXTRACT_ACL;
    archive_write_disk_set_options(out_.get(), flags);
    // No archive_write_disk_set_standard_lookup: owners stay numeric. Names would be mapped
    // through this host's passwd, and an ostree object's checksum covers its numeric uid/gid.
  }

  ExtractStats Run();

 private:
  void Entry(archive_entry* e, const std::string& raw);
  void Queue(archive_entry* e, TarEntryType type, const std::string& rel, const std::string& raw);
  void Stream(archive_entry* e, const std::string& rel, const std::string& raw);
  void WithLibarchive(archive_entry* e, TarEntryType type, const std::string& rel,
                      const std::string& raw);
  void SetXattrs(const std::string& rel, const std::string& raw,
                 const std::vector<std::pair<std::string, std::string>>& xattrs);
  void LibarchiveWarning(const std::string& raw);
  void AddData(std::size_t size) {
    stats_.bytes += size;
    ReportProgress(opts_, stats_.bytes, reported_);
  }

  void Drain() {
    pool_.Drain();
    queued_.clear();
    for (auto& [entry, message] : pool_.TakeWarnings()) warnings_.Add(entry, message);
  }
  // Whether `path` or a directory above it is still queued (a symlink not made yet, say): then
  // looking it up now would see the path as it was before that entry.
  bool QueuedOnTheWay(std::string path) const {
    if (queued_.empty()) return false;
    for (;;) {
      if (queued_.contains(path)) return true;
      std::size_t slash = path.rfind('/');
      if (slash == std::string::npos) return false;
      path.resize(slash);
    }
  }

  Reader& reader_;
  const std::string& label_;
  const fs::path& root_;
  const ExtractOptions& opts_;
  std::unique_ptr<archive, WriteDiskDeleter> out_;
  ExtractStats stats_;
  Warnings warnings_;
  std::uint64_t reported_ = 0;
  DirCache dirs_;
  FileWriterPool pool_;
  std::unordered_set<std::string> queued_;  // paths queued since the last drain
};

ExtractStats Extraction::Run() {
  archive* in = reader_.get();
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(in, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) reader_.Fail("reading the next entry");
    std::string raw = EntryPath(e);
    if (rc == ARCHIVE_WARN) warnings_.Add(raw, ArchiveMessage(in));
    Entry(e, raw);
    ++stats_.entries;
  }
  // Every file is in place before the directories get their modes and mtimes (a new entry
  // changes its directory's mtime).
  Drain();
  // Directory modes and mtimes are deferred to close (a read-only directory must stay
  // writable while its entries are extracted): without this call they are never restored.
  int rc = archive_write_close(out_.get());
  if (rc < ARCHIVE_WARN) {
    throw Error(Errc::kIo,
                label_ + ": restoring directory metadata: " + ArchiveMessage(out_.get()));
  }
  if (rc == ARCHIVE_WARN) LibarchiveWarning(".");
  reader_.Finish();
  if (opts_.progress) opts_.progress(stats_.bytes);
  return stats_;
}

void Extraction::Entry(archive_entry* e, const std::string& raw) {
  std::string rel = CheckAndRewrite(e, raw, root_, label_, opts_);
  TarEntryType type = TypeOf(e);
  const std::string parent = SplitParent(rel).first;
  if (!parent.empty() && QueuedOnTheWay(parent)) Drain();
  switch (RouteOf(e, type, rel)) {
    case Route::kQueued:
      return Queue(e, type, rel, raw);
    case Route::kStreamed:
      return Stream(e, rel, raw);
    case Route::kLibarchive:
      return WithLibarchive(e, type, rel, raw);
  }
}

void Extraction::Queue(archive_entry* e, TarEntryType type, const std::string& rel,
                       const std::string& raw) {
  auto [parent, name] = SplitParent(rel);
  FileJob job = JobFor(e, type, dirs_.Get(parent, raw), std::move(name), raw, opts_);
  if (job.kind == FileJob::Kind::kFile) {
    job.data.reserve(static_cast<std::size_t>(job.size));
    ForEachDataBlock(reader_, raw, [&](const void* data, std::size_t size, la_int64_t offset) {
      if (size == 0) return;
      if (!job.segments.empty() &&
          job.segments.back().offset + static_cast<la_int64_t>(job.segments.back().size) ==
              offset) {
        job.segments.back().size += size;
      } else {
        job.segments.push_back({offset, job.data.size(), size});
      }
      const auto* p = static_cast<const std::byte*>(data);
      job.data.insert(job.data.end(), p, p + size);
      AddData(size);
    });
  }
  queued_.insert(rel);
  pool_.Submit(std::hash<std::string>{}(parent), std::move(job));
}

// A big file, written here block by block as the archive yields them: the same creation and
// checks as a writer thread's (file_writer_pool.hpp), every failed write fatal at once.
void Extraction::Stream(archive_entry* e, const std::string& rel, const std::string& raw) {
  if (queued_.contains(rel)) Drain();  // an earlier entry of the same name lands first
  dirs_.Forget(rel);
  auto [parent, name] = SplitParent(rel);
  const FileJob job =
      JobFor(e, TarEntryType::kFile, dirs_.Get(parent, raw), std::move(name), raw, opts_);
  UniqueFd fd = CreateEntryFile(label_, job);
  ForEachDataBlock(reader_, raw, [&](const void* data, std::size_t size, la_int64_t offset) {
    WriteEntryData(label_, job, fd.get(), static_cast<const std::byte*>(data), size, offset);
    AddData(size);
  });
  FinishEntryFile(label_, job, std::move(fd),
                  [&](const std::string& message) { warnings_.Add(raw, message); });
}

// Written here: first the queued entries it could depend on (one of the same name; a
// hardlink's target).
void Extraction::WithLibarchive(archive_entry* e, TarEntryType type, const std::string& rel,
                                const std::string& raw) {
  bool wait = queued_.contains(rel);
  if (type == TarEntryType::kHardlink) {
    std::string target_rel =
        fs::path(archive_entry_hardlink(e)).lexically_relative(root_).generic_string();
    wait = wait || QueuedOnTheWay(target_rel);
  }
  if (wait) Drain();
  if (type != TarEntryType::kDirectory) dirs_.Forget(rel);
  const auto xattrs = opts_.xattrs ? XattrsOf(e) : decltype(XattrsOf(e)){};
  archive_entry_xattr_clear(e);

  int rc = archive_write_header(out_.get(), e);
  if (rc < ARCHIVE_WARN) HeaderFailed(out_.get(), e, raw, rel, root_, label_);
  if (rc == ARCHIVE_WARN) LibarchiveWarning(raw);
  const std::int64_t size = archive_entry_size(e);
  if (size > 0) {
    ForEachDataBlock(reader_, raw, [&](const void* data, std::size_t n, la_int64_t offset) {
      // libarchive reports a failed write(2) ("Write failed") as a mere warning.
      if (archive_write_data_block(out_.get(), data, n, offset) < ARCHIVE_OK) {
        const int err = archive_errno(out_.get());
        ThrowWriteFailure(label_, "writing", Quote(raw), err > 0 ? err : EIO,
                          dirs_.Get("", raw)->get(), static_cast<std::uint64_t>(size),
                          static_cast<std::uint64_t>(std::max<std::int64_t>(size - offset, 0)));
      }
      AddData(n);
    });
  }
  rc = archive_write_finish_entry(out_.get());
  if (rc < ARCHIVE_WARN) {
    throw Error(Errc::kIo,
                label_ + ": finishing entry " + Quote(raw) + ": " + ArchiveMessage(out_.get()));
  }
  if (rc == ARCHIVE_WARN) LibarchiveWarning(raw);
  if (!xattrs.empty()) SetXattrs(rel, raw, xattrs);
}

// On what libarchive just wrote, opened from its parent's fd without following a symlink (on
// the way or the entry itself), each failure judged by BestEffort().
void Extraction::SetXattrs(const std::string& rel, const std::string& raw,
                           const std::vector<std::pair<std::string, std::string>>& xattrs) {
  auto [parent, name] = SplitParent(rel);
  const int dir = dirs_.Get(parent, raw)->get();
  UniqueFd fd(::openat(dir, name.empty() ? "." : name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    throw SystemError(label_ + ": extracting entry " + Quote(raw) + ": opening it", errno);
  }
  for (const auto& [key, value] : xattrs) {
    if (::fsetxattr(fd.get(), key.c_str(), value.data(), value.size(), 0) == 0) continue;
    const int err = errno;
    const std::string message =
        "can't restore extended attribute " + key + ": " + std::strerror(err);
    if (!BestEffort(Metadata::kXattr, key, err)) {
      throw Error(Errc::kIo, label_ + ": extracting entry " + Quote(raw) + ": " + message);
    }
    warnings_.Add(raw, message);
  }
}

// A warning from libarchive's writer: metadata BestEffortArchiveWarning() allows to be lost is
// logged; anything else (a failed write above all) fails the entry.
void Extraction::LibarchiveWarning(const std::string& raw) {
  const int err = archive_errno(out_.get());
  if (BestEffortArchiveWarning(err)) {
    warnings_.Add(raw, ArchiveMessage(out_.get()));
    return;
  }
  throw Error(Errc::kIo, label_ + ": extracting entry " + Quote(raw) + ": " +
                             ArchiveMessage(out_.get()) +
                             (err > 0 ? std::string(": ") + std::strerror(err) : ""));
}

ExtractStats ExtractFrom(Reader& reader, const fs::path& root, const ExtractOptions& opts) {
  Extraction extraction(reader, root, opts);
  return extraction.Run();
}

void WriteAll(int fd, const void* data, std::size_t size, std::int64_t offset,
              const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError("writing " + what, errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
}

}  // namespace

struct TarReader::Impl {
  Impl(ArchiveSource& src, const std::string& label) : reader(src, label) {}
  Reader reader;
  std::optional<TarEntry> current;
  bool data_used = false;
  bool finished = false;
};

// ---------------------------------------------------------------------------------------------
// Sources

FileSource::FileSource(const fs::path& file, std::size_t block_size)
    : path_(file), buffer_(std::max<std::size_t>(block_size, 4096)) {
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    throw Error(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                SystemError("opening " + file.string(), err).what());
  }
  // The kernel reads ahead harder for a stream we read once, front to back.
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

std::span<const std::byte> FileSource::Read() {
  for (;;) {
    ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
    if (n >= 0) {
      bytes_read_ += static_cast<std::uint64_t>(n);
      return {buffer_.data(), static_cast<std::size_t>(n)};
    }
    if (errno != EINTR) throw SystemError("reading " + path_.string(), errno);
  }
}

EntrySource::EntrySource(TarReader& outer)
    : outer_(outer), size_(outer.Current("reading as a nested archive").size) {
  outer_.impl_->data_used = true;
}

std::span<const std::byte> EntrySource::Read() {
  // Sparse entries come as blocks with gaps between their offsets; the gaps are zeros.
  static const std::array<std::byte, 64 * 1024> kZeros{};
  if (pending_.empty() && !eof_) {
    const void* data = nullptr;
    std::size_t size = 0;
    std::int64_t offset = 0;
    if (outer_.ReadBlock(&data, &size, &offset)) {
      pending_ = {static_cast<const std::byte*>(data), size};
      pending_offset_ = offset;
    } else {
      eof_ = true;
      pending_offset_ = std::max(next_offset_, size_);
    }
  }
  if (pending_offset_ > next_offset_) {
    auto gap = static_cast<std::size_t>(
        std::min<std::int64_t>(pending_offset_ - next_offset_, kZeros.size()));
    next_offset_ += static_cast<std::int64_t>(gap);
    return {kZeros.data(), gap};
  }
  std::span<const std::byte> out = std::exchange(pending_, {});
  next_offset_ = pending_offset_ + static_cast<std::int64_t>(out.size());
  return out;
}

void EntrySource::CheckAfterError() { outer_.impl_->reader.CheckAfterError(); }

// ---------------------------------------------------------------------------------------------
// Extraction

ExtractStats ExtractTar(ArchiveSource& src, const std::string& label, const fs::path& dest,
                        const ExtractOptions& opts) {
  fs::path root = ExtractionRoot(dest, label);
  Reader reader(src, label);
  return ExtractFrom(reader, root, opts);
}

void SyncFilesystem(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw SystemError("opening " + path.string() + " to sync it", errno);
  if (::syncfs(fd.get()) != 0) {
    throw SystemError("syncing the filesystem of " + path.string(), errno);
  }
}

// ---------------------------------------------------------------------------------------------
// TarReader

TarReader::TarReader(ArchiveSource& src, std::string label)
    : label_(std::move(label)), impl_(std::make_unique<Impl>(src, label_)) {}

TarReader::~TarReader() = default;

std::optional<TarEntry> TarReader::Next() {
  impl_->current.reset();
  impl_->data_used = false;
  if (impl_->finished) return std::nullopt;
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(impl_->reader.get(), &e);
  if (rc == ARCHIVE_EOF) {
    Finish();
    return std::nullopt;
  }
  if (rc < ARCHIVE_WARN) Fail("reading the next entry");
  TarEntry entry;
  entry.path = EntryPath(e);
  if (rc == ARCHIVE_WARN) {
    spdlog::warn("{}: entry {}: {}", label_, Quote(entry.path),
                 ArchiveMessage(impl_->reader.get()));
  }
  entry.name = NormalizedName(entry.path);
  entry.type = TypeOf(e);
  entry.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  entry.mode = archive_entry_perm(e);
  if (const char* l = archive_entry_symlink(e); entry.type == TarEntryType::kSymlink && l) {
    entry.link_target = l;
  }
  if (const char* l = archive_entry_hardlink(e); l != nullptr) entry.link_target = l;
  impl_->current = entry;
  return entry;
}

const TarEntry& TarReader::Current(std::string_view doing) const {
  if (!impl_->current) {
    throw Error(Errc::kInternal, label_ + ": " + std::string(doing) + ": no current entry");
  }
  if (impl_->data_used) {
    throw Error(Errc::kInternal, label_ + ": " + std::string(doing) + " entry " +
                                     Quote(impl_->current->path) + ": its data was already read");
  }
  return *impl_->current;
}

bool TarReader::ReadBlock(const void** data, std::size_t* size, std::int64_t* offset) {
  la_int64_t off = 0;
  int rc = archive_read_data_block(impl_->reader.get(), data, size, &off);
  if (rc == ARCHIVE_EOF) return false;
  if (rc < ARCHIVE_WARN) {
    Fail("reading the data of entry " + Quote(impl_->current ? impl_->current->path : ""));
  }
  *offset = off;
  return true;
}

void TarReader::Fail(std::string_view doing) { impl_->reader.Fail(doing); }

ExtractStats TarReader::ExtractNested(const fs::path& dest, const ExtractOptions& opts) {
  const TarEntry& entry = Current("extracting");
  if (entry.type != TarEntryType::kFile) {
    throw Error(Errc::kInvalid, label_ + ": entry " + Quote(entry.path) +
                                    " is not a regular file, so it cannot be a nested archive");
  }
  const std::string inner_label = label_ + ": " + entry.name;
  fs::path root = ExtractionRoot(dest, inner_label);
  EntrySource src(*this);
  Reader inner(src, inner_label);
  return ExtractFrom(inner, root, opts);
}

void TarReader::CopyTo(const fs::path& file, mode_t mode) {
  const TarEntry& entry = Current("copying");
  if (entry.type != TarEntryType::kFile) {
    throw Error(Errc::kInvalid, label_ + ": entry " + Quote(entry.path) +
                                    " is not a regular file; it cannot be copied to " +
                                    file.string());
  }
  impl_->data_used = true;
  // O_NOFOLLOW: a symlink planted at the destination is an error, not a redirect.
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (fd.get() < 0) throw SystemError("creating " + file.string(), errno);
  if (::fchmod(fd.get(), mode) != 0) throw SystemError("chmod " + file.string(), errno);
  const void* data = nullptr;
  std::size_t size = 0;
  std::int64_t offset = 0;
  while (ReadBlock(&data, &size, &offset)) WriteAll(fd.get(), data, size, offset, file.string());
  // A sparse entry may end in a hole that no block covered.
  if (::ftruncate(fd.get(), entry.size) != 0) throw SystemError("sizing " + file.string(), errno);
  fd.Close(file.string());
}

std::string TarReader::ReadAll(std::size_t max_bytes) {
  const TarEntry& entry = Current("reading");
  auto too_big = [&](std::uint64_t size) {
    return Error(Errc::kInvalid, label_ + ": entry " + Quote(entry.path) + " is " +
                                     std::to_string(size) + " bytes, more than the " +
                                     std::to_string(max_bytes) +
                                     " allowed for it: the archive is not what was expected");
  };
  if (entry.type != TarEntryType::kFile) {
    throw Error(Errc::kInvalid, label_ + ": entry " + Quote(entry.path) +
                                    " is not a regular file, so its content cannot be read");
  }
  if (static_cast<std::uint64_t>(entry.size) > max_bytes) throw too_big(entry.size);
  impl_->data_used = true;
  std::string out;
  out.reserve(static_cast<std::size_t>(entry.size));
  const void* data = nullptr;
  std::size_t size = 0;
  std::int64_t offset = 0;
  while (ReadBlock(&data, &size, &offset)) {
    std::uint64_t end = static_cast<std::uint64_t>(offset) + size;
    if (end > max_bytes) throw too_big(end);
    if (out.size() < end) out.resize(end);
    std::copy_n(static_cast<const char*>(data), size, out.begin() + offset);
  }
  out.resize(static_cast<std::size_t>(entry.size));
  return out;
}

void TarReader::Finish() {
  impl_->finished = true;
  impl_->reader.Finish();
}

// ---------------------------------------------------------------------------------------------
// TarWriter

struct TarWriter::Impl {
  fs::path out;
  int fd = -1;
  archive* a = nullptr;
  archive* disk = nullptr;  // reads metadata (xattrs, ACLs) of files on disk
  archive_entry_linkresolver* links = nullptr;
  bool closed = false;
  std::vector<char> buffer = std::vector<char>(kCopyBlock);

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Here rather than in ~TarWriter, so a constructor that throws half-way cleans up too.
  ~Impl() {
    // Without Close() the archive is incomplete: archive_write_free closes it (writing a
    // valid-looking end marker), and the file is unlinked below, so a truncated tar never
    // stays. (archive_write_fail first would skip that close, but libarchive 3.6 then skips
    // freeing the gzip filter too and leaks about 1 MiB.)
    if (a != nullptr) archive_write_free(a);
    if (disk != nullptr) archive_read_free(disk);
    if (links != nullptr) archive_entry_linkresolver_free(links);
    if (fd >= 0) ::close(fd);
    if (!closed && !out.empty()) ::unlink(out.c_str());
  }

  [[noreturn]] void Fail(const std::string& doing) const {
    throw Error(Errc::kIo, "writing " + out.string() + ": " + doing + ": " + ArchiveMessage(a));
  }

  void WriteHeader(archive_entry* e) {
    int rc = archive_write_header(a, e);
    if (rc < ARCHIVE_WARN) Fail("adding " + Quote(EntryPath(e)));
    if (rc == ARCHIVE_WARN) {
      spdlog::warn("{}: entry {}: {}", out.string(), Quote(EntryPath(e)), ArchiveMessage(a));
    }
  }

  void WriteData(const void* data, std::size_t size, archive_entry* e) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      la_ssize_t n = archive_write_data(a, p, size);
      if (n <= 0) Fail("writing the data of " + Quote(EntryPath(e)));
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  // Header plus, for a regular file with data, the bytes of `source`.
  void WriteEntry(archive_entry* e, const fs::path& source) {
    WriteHeader(e);
    std::int64_t expected = archive_entry_size(e);
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr ||
        expected <= 0) {
      return;
    }
    UniqueFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (in.get() < 0) throw SystemError("opening " + source.string(), errno);
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    std::int64_t done = 0;
    for (;;) {
      ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw SystemError("reading " + source.string(), errno);
      }
      if (n == 0) break;
      if (done + n > expected) break;  // grew: caught below
      WriteData(buffer.data(), static_cast<std::size_t>(n), e);
      done += n;
    }
    // The header already promised `expected` bytes: a file that changed size under us would
    // silently be padded or cut.
    if (done != expected) {
      throw Error(Errc::kIo, "writing " + out.string() + ": " + source.string() +
                                 " changed size while it was being archived");
    }
  }

  void Emit(archive_entry* e) {
    archive_entry* spare = nullptr;
    archive_entry_linkify(links, &e, &spare);
    while (e != nullptr) {
      const char* src = archive_entry_sourcepath(e);
      try {
        WriteEntry(e, src != nullptr ? src : "");
      } catch (...) {
        archive_entry_free(e);
        archive_entry_free(spare);
        throw;
      }
      archive_entry_free(e);
      e = std::exchange(spare, nullptr);
    }
  }

  // Returns the path's lstat mode, so the walk knows whether to descend.
  mode_t AddPath(const fs::path& path, const std::string& name) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) throw SystemError("lstat " + path.string(), errno);
    if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ||
        S_ISBLK(st.st_mode)) {
      // ExtractTar refuses these, so an archive holding one could never be extracted.
      spdlog::warn("{}: skipping {}: sockets, FIFOs and device nodes are not archived",
                   out.string(), path.string());
      return st.st_mode;
    }
    archive_entry* e = archive_entry_new();
    if (e == nullptr) throw std::bad_alloc();
    archive_entry_copy_pathname(e, name.c_str());
    archive_entry_copy_sourcepath(e, path.c_str());
    int rc = archive_read_disk_entry_from_file(disk, e, -1, &st);
    if (rc < ARCHIVE_WARN) {
      std::string message = ArchiveMessage(disk);
      archive_entry_free(e);
      throw Error(Errc::kIo, "writing " + out.string() + ": reading metadata of " + path.string() +
                                 ": " + message);
    }
    if (rc == ARCHIVE_WARN) {
      spdlog::warn("{}: {}: {}", out.string(), path.string(), ArchiveMessage(disk));
    }
    Emit(e);
    return st.st_mode;
  }

  void Walk(const fs::path& dir, const std::string& rel, const std::string& prefix,
            const Exclude& exclude) {
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
    if (!d) throw SystemError("opening directory " + dir.string(), errno);
    errno = 0;
    while (dirent* de = ::readdir(d.get())) {
      std::string_view n = de->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    if (errno != 0) throw SystemError("reading directory " + dir.string(), errno);
    d.reset();
    // Sorted, so the same tree always gives the same archive.
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      std::string child_rel = rel.empty() ? n : rel + "/" + n;
      if (exclude && exclude(child_rel)) continue;
      fs::path child = dir / n;
      if (S_ISDIR(AddPath(child, prefix.empty() ? child_rel : prefix + "/" + child_rel))) {
        Walk(child, child_rel, prefix, exclude);
      }
    }
  }
};

TarWriter::TarWriter(const fs::path& out, Compression compression, int gzip_level)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd < 0) throw SystemError("creating " + out.string(), errno);
  w.out = out;  // only now ours to remove if we fail
  w.a = archive_write_new();
  w.disk = archive_read_disk_new();
  w.links = archive_entry_linkresolver_new();
  if (w.a == nullptr || w.disk == nullptr || w.links == nullptr) throw std::bad_alloc();
  // pax: xattrs (SCHILY.xattr.*, which GNU tar reads too), long names, big uids. The
  // "restricted" flavour writes plain ustar headers when nothing needs pax.
  archive_write_set_format_pax_restricted(w.a);
  if (compression == Compression::kGzip) {
    archive_write_add_filter_gzip(w.a);
    std::string level = std::to_string(std::clamp(gzip_level, 1, 9));
    if (archive_write_set_filter_option(w.a, "gzip", "compression-level", level.c_str()) !=
        ARCHIVE_OK) {
      w.Fail("setting the gzip level");
    }
    // No timestamp in the gzip header, so the same tree gives the same bytes (and digest).
    archive_write_set_filter_option(w.a, "gzip", "timestamp", nullptr);
  }
  // Large writes to the file, and no padding of the last block: nothing needs it.
  archive_write_set_bytes_per_block(w.a, static_cast<int>(kCopyBlock));
  archive_write_set_bytes_in_last_block(w.a, 1);
  if (archive_write_open_fd(w.a, w.fd) != ARCHIVE_OK) w.Fail("opening");
  archive_entry_linkresolver_set_strategy(w.links, archive_format(w.a));
  // Symlinks are archived as symlinks; sparse maps are not used (data is copied linearly); file
  // flags are not recorded (ExtractTar never applies them).
  archive_read_disk_set_symlink_physical(w.disk);
  archive_read_disk_set_behavior(w.disk, ARCHIVE_READDISK_NO_SPARSE | ARCHIVE_READDISK_NO_FFLAGS);
}

TarWriter::~TarWriter() = default;

void TarWriter::AddTree(const fs::path& root, const std::string& prefix, const Exclude& exclude) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) throw SystemError("stat " + root.string(), errno);
  if (!S_ISDIR(st.st_mode)) {
    throw Error(Errc::kInvalid, "archiving " + root.string() + ": not a directory");
  }
  if (!prefix.empty()) impl_->AddPath(root, prefix);
  impl_->Walk(root, "", prefix, exclude);
}

void TarWriter::AddPath(const fs::path& path, const std::string& name) {
  impl_->AddPath(path, name);
}

void TarWriter::AddFile(const std::string& name, const fs::path& from) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) throw SystemError("stat " + from.string(), errno);
  if (!S_ISREG(st.st_mode)) {
    throw Error(Errc::kInvalid, "archiving " + from.string() + ": not a regular file");
  }
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                             &archive_entry_free);
  archive_entry_copy_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), st.st_mode & 07777);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  archive_entry_set_size(e.get(), st.st_size);
  impl_->WriteEntry(e.get(), from);
}

void TarWriter::AddData(const std::string& name, std::string_view data, mode_t mode) {
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                             &archive_entry_free);
  archive_entry_copy_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), mode & 07777);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), std::time(nullptr), 0);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
  impl_->WriteHeader(e.get());
  impl_->WriteData(data.data(), data.size(), e.get());
}

void TarWriter::Close() {
  Impl& w = *impl_;
  if (w.closed) return;
  if (archive_write_close(w.a) != ARCHIVE_OK) w.Fail("finishing the archive");
  int fd = std::exchange(w.fd, -1);
  if (::close(fd) != 0) throw SystemError("closing " + w.out.string(), errno);
  w.closed = true;
}

}  // namespace lca::stateroot
