#pragma once
// Tar archives, read and written with libarchive (never a hand-written tar reader).
//
// Reading is built for the seed: one streaming pass over an OCI layer, where each root file is
// either a nested tar (ostree.tgz, var.tgz, etc.tgz) extracted straight to its destination, a
// small file read into memory, or a file copied out. Nothing is staged on disk in between.
//
// Extraction treats the archive as hostile: every entry is checked before anything is written
// for it, and a bad one stops the extraction with Errc::kInvalid naming the archive and the entry.
// Entries already extracted stay, so callers extract into a staging directory they can discard.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lca::stateroot {

class TarReader;

// A readable byte stream that libarchive pulls from. Blocks rather than a fill-my-buffer read,
// so a source hands out what it already holds (its read buffer, an outer archive's decompressed
// block) without copying it. Readers decompress on a helper thread, so these methods may be
// called from a thread other than the one that made the reader, though never two at once.
class ArchiveSource {
 public:
  virtual ~ArchiveSource() = default;

  // The next block of bytes, valid until the next call; an empty span at the end. Throws
  // lca::Error on failure (the reader reports that error, not libarchive's echo of it).
  virtual std::span<const std::byte> Read() = 0;

  // The consumer is done with the stream (the archive ended, or it stopped early on purpose).
  // A verifying source reads what is left and checks it here. Default: nothing.
  virtual void Finish() {}

  // A read failed inside libarchive (corrupt data). A source that can tell whether the bytes
  // themselves are bad (a digest) throws that, more useful, error here. Default: nothing.
  virtual void CheckAfterError() {}
};

// A file on disk, read sequentially in large blocks.
class FileSource final : public ArchiveSource {
 public:
  static constexpr std::size_t kDefaultBlockSize = std::size_t{1} << 20;

  // Opens now: a missing file is kNotFound, any other failure kIo.
  explicit FileSource(const std::filesystem::path& file,
                      std::size_t block_size = kDefaultBlockSize);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::span<const std::byte> Read() override;

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::byte> buffer_;
  std::uint64_t bytes_read_ = 0;
};

// The data of the current entry of an outer archive, so a tar.gz inside a layer tar.gz is read
// in the same pass as the layer. Valid until the outer reader moves to the next entry; the outer
// reader must not be used while a reader over this source is (ExtractTar returns only after its
// decompression thread has stopped).
class EntrySource final : public ArchiveSource {
 public:
  explicit EntrySource(TarReader& outer);

  std::span<const std::byte> Read() override;
  // A corrupt inner stream may be the outer blob's fault: ask the outer source.
  void CheckAfterError() override;

 private:
  TarReader& outer_;
  std::int64_t size_;                   // the entry's size, for a trailing sparse hole
  std::int64_t next_offset_ = 0;        // where the bytes handed out so far end
  std::span<const std::byte> pending_;  // a block held back while a sparse gap is zero-filled
  std::int64_t pending_offset_ = 0;
  bool eof_ = false;
};

struct ExtractOptions {
  bool preserve_owner = true;  // numeric uid/gid from the archive (root in production)
  // Extended attributes and ACLs, including security.selinux where the host allows it. Only
  // the failures BestEffort() lists (extract_policy.hpp: an attribute the filesystem cannot
  // hold, a label the host will not take) are warnings (logged, counted); any other is an error.
  bool xattrs = true;
  // false: a relative symlink target must stay inside `dest` and an absolute one is read as
  // relative to `dest` (as in a chroot), so any absolute target is allowed. true: any target,
  // for trees whose symlinks are data that nothing follows, such as the symlink objects of a bare
  // ostree repo (objects/ab/cd….file -> ../../../usr/lib/…). Writing THROUGH a symlink is
  // refused either way, so no option lets an entry land outside `dest`.
  bool allow_escaping_symlinks = false;
  // A host fact: SELinux is enabled, so an extended attribute that cannot be written (a
  // security.selinux label among them) fails the extraction instead of being a warning; a
  // mislabelled release would not boot right.
  bool selinux_enabled = false;
  // Threads that create the regular files and symlinks (see file_writer_pool.hpp); 0: one per
  // core, at least 2 and at most 4.
  unsigned writer_threads = 0;
  // Called with the total uncompressed bytes written so far, every few MiB and once at the end.
  // An exception thrown from it stops the extraction and propagates (use it to cancel).
  std::function<void(std::uint64_t bytes_done)> progress;
};

struct ExtractStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;     // uncompressed file data written
  std::uint64_t warnings = 0;  // metadata libarchive could not restore (xattrs, ACLs, times)
};

// Extracts a tar (gzip, bzip2, xz, zstd, lz4 or uncompressed, detected) from `src` into `dest`,
// which must be an existing directory. Each entry is checked before anything is written for it
// and refused with Errc::kInvalid "<label>: entry "<name>" <why>…" when it has an absolute path,
// a ".." component, is a symlink whose target leaves `dest` (see ExtractOptions), a hardlink
// whose target is absolute or leaves `dest`, would be written through a symlink (one from the
// archive or one already in `dest`), or is a character/block device, FIFO or socket.
// Decompression (and the source's own work: reading, hashing) runs on a helper thread, so it
// overlaps the filesystem syscalls, as `tar xzf` overlaps with its gzip child; gzip is inflated
// with ISA-L. Small regular files and symlinks are created by writer threads
// (file_writer_pool.hpp); the result is the same as writing the entries in archive order.
// Modes (including setuid), numeric owners, mtimes, xattrs, ACLs and hardlinks are restored;
// file flags (chattr +i) never are. An existing non-directory in the way is replaced (unlinked,
// so an inode shared by hardlinks outside `dest` is never written to); an existing directory is
// merged into. Nothing is fsynced: call SyncFilesystem once afterwards.
// At the end of the archive it calls src.Finish(), so a VerifyingSource checks its digest.
// Corrupt or truncated data is kInvalid; any failure to create, write, size or close an entry
// (ENOSPC, EIO, EACCES) stops the extraction at once with kIo naming the entry, for ENOSPC with
// what it needed and what is free.
ExtractStats ExtractTar(ArchiveSource& src, const std::string& label,
                        const std::filesystem::path& dest, const ExtractOptions& opts = {});

// syncfs(2) on the filesystem holding `path`: one flush after many extractions, instead of an
// fsync per file.
void SyncFilesystem(const std::filesystem::path& path);

enum class TarEntryType { kFile, kDirectory, kSymlink, kHardlink, kOther };

struct TarEntry {
  std::string path;  // as stored, e.g. "./manifest.json"
  std::string name;  // without leading "/", "./" and empty or "." components
  TarEntryType type = TarEntryType::kOther;
  std::int64_t size = 0;    // data bytes (0 for links and directories)
  mode_t mode = 0;          // permission bits, including setuid/setgid/sticky
  std::string link_target;  // symlink target, or the archive path a hardlink points to
};

// Walks the entries of an archive (the outer layer of a seed) in one forward pass. For the
// current entry, at most one of the data calls below may be used, before Next() is called
// again; an entry left unread is skipped.
class TarReader {
 public:
  // Opens the archive and detects its compression (decompressing on a helper thread, as
  // ExtractTar does). `label` names it in every error.
  TarReader(ArchiveSource& src, std::string label);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // The next entry, or nullopt at the end of the archive, where it calls Finish(): iterating
  // to the end verifies a VerifyingSource.
  std::optional<TarEntry> Next();

  // The current entry is a tar itself: extracts it into `dest` without writing it to disk
  // first. Errors name "<label>: <entry name>".
  ExtractStats ExtractNested(const std::filesystem::path& dest, const ExtractOptions& opts = {});

  // Copies the current regular file to `file` (created or truncated, given `mode` exactly, never
  // followed if it is a symlink). Not atomic.
  void CopyTo(const std::filesystem::path& file, mode_t mode);

  // The current regular file's bytes. More than `max_bytes` is kInvalid (a seed's json and
  // lists are small; a huge one is a bad seed, not something to buffer).
  static constexpr std::size_t kDefaultMaxRead = std::size_t{16} << 20;
  std::string ReadAll(std::size_t max_bytes = kDefaultMaxRead);

  // Done with the archive, at its end or early: src.Finish() (a VerifyingSource reads the rest
  // of its blob, without decompressing it, and checks the digest). Idempotent.
  void Finish();

  const std::string& label() const { return label_; }

 private:
  friend class EntrySource;
  struct Impl;

  // The next block of the current entry's data; false at its end.
  bool ReadBlock(const void** data, std::size_t* size, std::int64_t* offset);
  // Throws the error behind a failed libarchive call on the reader.
  [[noreturn]] void Fail(std::string_view doing);
  const TarEntry& Current(std::string_view doing) const;

  std::string label_;
  std::unique_ptr<Impl> impl_;
};

enum class Compression { kNone, kGzip };

// Writes a tar (pax format, readable by GNU tar and libarchive) for seed creation. The output
// is complete only after Close(); destroying the writer before that removes the partial file.
class TarWriter {
 public:
  TarWriter(const std::filesystem::path& out, Compression compression, int gzip_level = 6);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Relative path (from the tree root, "/"-separated, no leading "./") -> true to leave it out.
  // An excluded directory is not descended into.
  using Exclude = std::function<bool(const std::string& relative_path)>;

  // Adds the tree under `root`, entries named "<prefix>/<relative path>" (just the relative path
  // when `prefix` is empty; with a prefix, the root itself is an entry named `prefix`, so "."
  // gives GNU tar's "-C root ." layout). Keeps modes, numeric owners, mtimes, xattrs (including
  // security.selinux), ACLs, symlinks and hardlinks (among the files this writer adds).
  // Directories are sorted, so the same tree gives the same archive. Like tar, it crosses mount
  // points. Sockets, FIFOs and device nodes are skipped with a warning: ExtractTar refuses them.
  void AddTree(const std::filesystem::path& root, const std::string& prefix,
               const Exclude& exclude = {});

  // One entry from disk under `name`, not descending into a directory, with everything
  // AddTree keeps (owner, mode, mtime, xattrs, ACLs, a symlink as a symlink, hardlinks among
  // the entries this writer adds).
  void AddPath(const std::filesystem::path& path, const std::string& name);
  // A regular file from disk under `name`: its bytes, mode and mtime, owned by root.
  void AddFile(const std::string& name, const std::filesystem::path& from);
  // `data` under `name`, owned by root, mtime now.
  void AddData(const std::string& name, std::string_view data, mode_t mode = 0644);

  // Writes the end of the archive and closes the file (no fsync).
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lca::stateroot
