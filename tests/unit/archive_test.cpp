// Tests for formats/archive: hostile archives are refused before anything lands outside the
// destination, good ones keep their metadata, a tar.gz inside a layer is extracted in the same
// pass, and TarWriter's output reads back (with our reader and with GNU tar).
//
// Test archives are built here with libarchive's writer directly, never with TarWriter, so a
// writer bug cannot hide a reader bug.
#include "formats/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/process.hpp"
#include "tests/support/small_fs.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Building archives with libarchive directly

// Every member has an initializer, so designated initializers stay -Wextra clean.
struct Spec {
  std::string path{};
  char type = 'f';     // f file, d dir, l symlink, h hardlink, c/b char/block device, p FIFO
  std::string data{};  // file content
  std::string link{};  // symlink target or hardlink target (an archive path)
  mode_t perm = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = 1'700'000'000;
  std::map<std::string, std::string> xattrs{};
};

enum class Filter { kNone, kGzip, kZstd, kXz };

void WriteArchive(const fs::path& out, const std::vector<Spec>& entries,
                  Filter filter = Filter::kGzip) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), &archive_write_free);
  ASSERT_EQ(archive_write_set_format_pax_restricted(a.get()), ARCHIVE_OK);
  switch (filter) {
    case Filter::kNone:
      break;
    case Filter::kGzip:
      ASSERT_EQ(archive_write_add_filter_gzip(a.get()), ARCHIVE_OK);
      break;
    case Filter::kZstd:
      ASSERT_EQ(archive_write_add_filter_zstd(a.get()), ARCHIVE_OK);
      break;
    case Filter::kXz:
      ASSERT_EQ(archive_write_add_filter_xz(a.get()), ARCHIVE_OK);
      break;
  }
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK);
  for (const Spec& s : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                               &archive_entry_free);
    archive_entry_copy_pathname(e.get(), s.path.c_str());
    archive_entry_set_perm(e.get(), s.perm);
    archive_entry_set_uid(e.get(), s.uid);
    archive_entry_set_gid(e.get(), s.gid);
    archive_entry_set_mtime(e.get(), s.mtime, 0);
    archive_entry_set_size(e.get(), 0);
    switch (s.type) {
      case 'f':
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(s.data.size()));
        break;
      case 'd':
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_copy_symlink(e.get(), s.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_copy_hardlink(e.get(), s.link.c_str());
        break;
      case 'c':
        archive_entry_set_filetype(e.get(), AE_IFCHR);
        archive_entry_set_rdev(e.get(), makedev(1, 3));
        break;
      case 'b':
        archive_entry_set_filetype(e.get(), AE_IFBLK);
        archive_entry_set_rdev(e.get(), makedev(8, 0));
        break;
      case 'p':
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        break;
      default:
        FAIL() << "bad spec type " << s.type;
    }
    for (const auto& [k, v] : s.xattrs) {
      archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
    }
    ASSERT_EQ(archive_write_header(a.get(), e.get()), ARCHIVE_OK) << archive_error_string(a.get());
    if (s.type == 'f' && !s.data.empty()) {
      ASSERT_EQ(archive_write_data(a.get(), s.data.data(), s.data.size()),
                static_cast<la_ssize_t>(s.data.size()));
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

// A source that counts what it hands out, to prove a layer is read exactly once.
class CountingSource final : public ArchiveSource {
 public:
  explicit CountingSource(const fs::path& file) : file_(file) {}
  std::span<const std::byte> Read() override {
    auto block = file_.Read();
    bytes += block.size();
    return block;
  }
  // Like VerifyingSource: read what the consumer left, so `bytes` is the whole file exactly
  // when nothing was read twice.
  void Finish() override {
    ++finish_calls;
    while (!Read().empty()) {
    }
  }
  uint64_t bytes = 0;
  int finish_calls = 0;

 private:
  FileSource file_;
};

ProcessResult RunTool(std::vector<std::string> argv) {
  SystemProcessRunner runner;
  return RunChecked(runner, ProcessSpec{.argv = std::move(argv)});
}

std::string Pattern(std::size_t size, unsigned seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

struct stat Lstat(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

std::optional<std::string> GetXattr(const fs::path& p, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

bool UserXattrsWork(const fs::path& dir) {
  fs::path probe = dir / ".xattr-probe";
  WriteFileAtomic(probe, "", 0644);
  bool ok = ::setxattr(probe.c_str(), "user.probe", "1", 1, 0) == 0;
  fs::remove(probe);
  return ok;
}

// ---------------------------------------------------------------------------------------------

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lca-archive-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dest_ = root_ / "box" / "dest";
    outside_ = root_ / "outside";
    fs::create_directories(dest_);
    fs::create_directories(outside_);
    WriteFileAtomic(root_ / "secret", "do not touch\n", 0600);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Every path under root_ but outside dest_, with its type and size: proves nothing was
  // written outside the destination.
  std::set<std::string> OutsideListing() const {
    std::set<std::string> out;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->path() == dest_) {
        it.disable_recursion_pending();
        continue;
      }
      struct stat st = Lstat(it->path());
      out.insert(it->path().string() + " mode=" + std::to_string(st.st_mode) +
                 " size=" + std::to_string(st.st_size) + " nlink=" + std::to_string(st.st_nlink));
    }
    return out;
  }

  ExtractStats Extract(const std::vector<Spec>& entries, const ExtractOptions& opts = {},
                       Filter filter = Filter::kGzip) {
    fs::path tar = root_ / "in.tar";
    WriteArchive(tar, entries, filter);
    FileSource src(tar);
    return ExtractTar(src, "test.tgz", dest_, opts);
  }

  // The archive is refused with kInvalid naming `entry` and saying `why`, and nothing outside
  // dest_ changed.
  void ExpectRefused(const std::vector<Spec>& entries, const std::string& entry,
                     const std::string& why, const ExtractOptions& opts = {}) {
    fs::path tar = root_ / "in.tar";
    WriteArchive(tar, entries);
    const auto before = OutsideListing();
    try {
      FileSource src(tar);
      ExtractTar(src, "test.tgz", dest_, opts);
      ADD_FAILURE() << "extraction of a hostile archive succeeded (entry " << entry << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
      EXPECT_THAT(e.what(), HasSubstr("test.tgz: entry \"" + entry + "\"")) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(why));
    }
    EXPECT_EQ(OutsideListing(), before);
    EXPECT_TRUE(fs::is_empty(outside_));
  }

  fs::path root_, dest_, outside_;
};

// ---------------------------------------------------------------------------------------------
// Hostile archives

TEST_F(ArchiveTest, RefusesDotDot) {
  ExpectRefused({{.path = "../evil", .data = "x"}}, "../evil", "\"..\" component");
  EXPECT_FALSE(fs::exists(root_ / "box" / "evil"));
}

TEST_F(ArchiveTest, RefusesDotDotInTheMiddle) {
  ExpectRefused({{.path = "a/../../evil", .data = "x"}}, "a/../../evil", "\"..\" component");
  EXPECT_FALSE(fs::exists(root_ / "box" / "evil"));
}

TEST_F(ArchiveTest, RefusesAbsolutePaths) {
  const bool existed = fs::exists("/etc/evil");
  ExpectRefused({{.path = "/etc/evil", .data = "x"}}, "/etc/evil", "absolute path");
  EXPECT_EQ(fs::exists("/etc/evil"), existed);
  const std::string into_outside = (outside_ / "evil").string();
  ExpectRefused({{.path = into_outside, .data = "x"}}, into_outside, "absolute path");
}

TEST_F(ArchiveTest, RefusesSymlinkEscapingTheDestination) {
  ExpectRefused(
      {{.path = "link", .type = 'l', .link = "../../outside"}, {.path = "link/x", .data = "pwned"}},
      "link", "points outside the destination");
  EXPECT_FALSE(fs::exists(dest_ / "link"));
  // Deeper entries climbing just as far are caught too; staying inside is fine.
  ExpectRefused({{.path = "a/b/link", .type = 'l', .link = "../x/../../../outside"}}, "a/b/link",
                "points outside");
  Extract({{.path = "a/b/ok", .type = 'l', .link = "../../c/../d"}});
  EXPECT_EQ(fs::read_symlink(dest_ / "a/b/ok"), "../../c/../d");
}

TEST_F(ArchiveTest, RefusesWritingThroughASymlinkFromTheArchive) {
  // An absolute target is read as relative to the destination (as in a chroot), so the link
  // itself is allowed; following it on the host would reach outside_, so writing through it
  // must be refused.
  ExpectRefused({{.path = "link", .type = 'l', .link = outside_.string()},
                 {.path = "link/x", .data = "pwned"}},
                "link/x", "would be written through the symlink \"link\"");
  EXPECT_TRUE(fs::is_symlink(dest_ / "link"));
}

TEST_F(ArchiveTest, RefusesWritingThroughASymlinkAlreadyInTheDestination) {
  fs::create_directory_symlink(outside_, dest_ / "pre");
  ExpectRefused({{.path = "pre/x", .data = "pwned"}}, "pre/x", "through the symlink \"pre\"");
  ExpectRefused({{.path = "pre/a/b/c", .data = "pwned"}}, "pre/a/b/c", "through the symlink");
  // libarchive's writer names directories with a trailing slash.
  ExpectRefused({{.path = "pre/d", .type = 'd'}}, "pre/d/", "through the symlink");
}

TEST_F(ArchiveTest, AllowEscapingSymlinksStillNeverWritesThroughThem) {
  ExtractOptions opts;
  opts.allow_escaping_symlinks = true;
  ExpectRefused({{.path = "objects/ab/cd.file", .type = 'l', .link = "../../../../outside"},
                 {.path = "objects/ab/cd.file/x", .data = "pwned"}},
                "objects/ab/cd.file/x", "through the symlink", opts);
  EXPECT_EQ(fs::read_symlink(dest_ / "objects/ab/cd.file"), "../../../../outside");
}

TEST_F(ArchiveTest, RefusesHardlinksLeavingTheDestination) {
  ExpectRefused({{.path = "h", .type = 'h', .link = "../../secret"}}, "h", "\"..\" component");
  ExpectRefused({{.path = "h", .type = 'h', .link = (root_ / "secret").string()}}, "h",
                "absolute hardlink target");
  EXPECT_EQ(Lstat(root_ / "secret").st_nlink, 1u);
  EXPECT_FALSE(fs::exists(dest_ / "h"));
}

TEST_F(ArchiveTest, RefusesHardlinksThroughSymlinks) {
  ExpectRefused({{.path = "up", .type = 'l', .link = root_.string()},
                 {.path = "h", .type = 'h', .link = "up/secret"}},
                "h", "symlink \"up\"");
  EXPECT_EQ(Lstat(root_ / "secret").st_nlink, 1u);
}

TEST_F(ArchiveTest, RefusesHardlinksToMissingTargets) {
  ExpectRefused({{.path = "h", .type = 'h', .link = "nothing-here"}}, "h", "does not exist");
}

TEST_F(ArchiveTest, RefusesDevicesAndFifos) {
  ExpectRefused({{.path = "null", .type = 'c'}}, "null", "character device");
  ExpectRefused({{.path = "sda", .type = 'b'}}, "sda", "block device");
  ExpectRefused({{.path = "pipe", .type = 'p'}}, "pipe", "FIFO");
  EXPECT_TRUE(fs::is_empty(dest_));
}

TEST_F(ArchiveTest, CorruptAndForeignInputIsInvalid) {
  std::vector<Spec> entries;
  for (int i = 0; i < 20; ++i)
    entries.push_back({.path = "f" + std::to_string(i), .data = Pattern(50000, i)});
  fs::path tar = root_ / "t.tgz";
  WriteArchive(tar, entries);
  fs::resize_file(tar, fs::file_size(tar) / 2);
  try {
    FileSource src(tar);
    ExtractTar(src, "half.tgz", dest_);
    ADD_FAILURE() << "a truncated archive extracted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("half.tgz"));
    EXPECT_THAT(e.what(), HasSubstr("corrupt or truncated"));
  }

  WriteFileAtomic(root_ / "text", "this is not an archive at all, just some words\n", 0644);
  FileSource text(root_ / "text");
  EXPECT_THROW(
      {
        try {
          ExtractTar(text, "text", dest_);
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
          throw;
        }
      },
      Error);
}

// gzip goes through ISA-L: the member's CRC-32 is checked, concatenated members are one stream
// (as gzip(1) reads them), and bytes after the last member that do not start another are ignored.
TEST_F(ArchiveTest, GzipMembersChecksumsAndTrailingBytes) {
  std::vector<Spec> entries;
  for (int i = 0; i < 8; ++i)
    entries.push_back({.path = "f" + std::to_string(i), .data = Pattern(300000, i)});
  fs::path plain = root_ / "t.tar";
  WriteArchive(plain, entries, Filter::kNone);
  std::string tar = ReadFile(plain);
  // Two members: gzip each half of the tar on its own and concatenate.
  std::size_t half = tar.size() / 2;
  WriteFileAtomic(root_ / "a", tar.substr(0, half), 0644);
  WriteFileAtomic(root_ / "b", tar.substr(half), 0644);
  SystemProcessRunner runner;
  for (const char* part : {"a", "b"}) {
    RunChecked(runner, ProcessSpec{.argv = {"gzip", "-n", (root_ / part).string()}});
  }
  std::string two = ReadFile(root_ / "a.gz") + ReadFile(root_ / "b.gz");
  WriteFileAtomic(root_ / "two.tgz", two + std::string(512, '\0') + "junk", 0644);
  {
    FileSource src(root_ / "two.tgz", 4096);  // small blocks: members and trailers straddle them
    ExtractStats stats = ExtractTar(src, "two.tgz", dest_);
    EXPECT_EQ(stats.entries, 8u);
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(ReadFile(dest_ / ("f" + std::to_string(i))), Pattern(300000, i)) << i;
  }
  // Trailing bytes that begin with 0x1f but not with the whole magic 1f 8b are not a member
  // either: gzip(1) ignores them. Once in one read, once with 0x1f the last byte of a read.
  WriteFileAtomic(root_ / "tail.tgz", two + std::string("\x1f\x00trailing", 10), 0644);
  for (std::size_t block : {std::size_t{4096}, two.size() + 1}) {
    fs::remove_all(dest_);
    fs::create_directory(dest_);
    FileSource src(root_ / "tail.tgz", block);
    EXPECT_EQ(ExtractTar(src, "tail.tgz", dest_).entries, 8u) << block;
  }

  // The CRC-32 of the second member, in its trailer, no longer matches its data.
  std::string bad = two;
  bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 0x5a);
  WriteFileAtomic(root_ / "bad.tgz", bad, 0644);
  fs::remove_all(dest_);
  fs::create_directory(dest_);
  try {
    FileSource src(root_ / "bad.tgz");
    ExtractTar(src, "bad.tgz", dest_);
    ADD_FAILURE() << "a CRC mismatch extracted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("bad.tgz: decompressing: gzip CRC-32 mismatch"));
  }
}

TEST_F(ArchiveTest, MissingDestinationOrSource) {
  fs::path tar = root_ / "t.tgz";
  WriteArchive(tar, {{.path = "a", .data = "x"}});
  FileSource src(tar);
  try {
    ExtractTar(src, "t", root_ / "nope");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound) << e.what();
  }
  try {
    FileSource missing(root_ / "missing.tgz");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Good archives

TEST_F(ArchiveTest, RestoresModesOwnersTimesXattrsAndLinks) {
  const std::string big = Pattern(3 << 20, 7);
  const std::vector<Spec> entries = {
      {.path = "./", .type = 'd', .perm = 0751, .mtime = 1'600'000'000},
      {.path = "./d", .type = 'd', .perm = 0755, .uid = 1000, .gid = 1000, .mtime = 1'500'000'000},
      {.path = "./d/suid",
       .data = "#!/bin/true\n",
       .perm = 04755,
       .uid = 1000,
       .gid = 1000,
       .mtime = 1'400'000'000},
      {.path = "./d/secret", .data = "s", .perm = 0600, .mtime = 1'400'000'001},
      {.path = "./d/x", .data = "xattr", .xattrs = {{"user.test", "1"}}},
      {.path = "./d/rel", .type = 'l', .link = "suid", .mtime = 1'300'000'000},
      {.path = "./d/abs", .type = 'l', .link = "/usr/bin/true"},
      {.path = "./d/up", .type = 'l', .link = "../d/secret"},
      {.path = "./d/hl", .type = 'h', .link = "./d/suid"},
      {.path = "./empty", .type = 'd', .perm = 0700},
      {.path = "big", .data = big},
  };
  std::vector<uint64_t> progress;
  ExtractOptions opts;
  opts.progress = [&](uint64_t done) { progress.push_back(done); };
  const bool xattrs = UserXattrsWork(dest_);
  ExtractStats stats = Extract(entries, opts);

  EXPECT_EQ(stats.entries, entries.size());
  EXPECT_EQ(stats.bytes, big.size() + 12 + 1 + 5);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), stats.bytes);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));

  EXPECT_EQ(Lstat(dest_).st_mode & 07777, 0751u);
  struct stat d = Lstat(dest_ / "d");
  EXPECT_TRUE(S_ISDIR(d.st_mode));
  EXPECT_EQ(d.st_uid, 1000u);
  EXPECT_EQ(d.st_gid, 1000u);
  EXPECT_EQ(d.st_mtime, 1'500'000'000);  // set after its entries were written

  struct stat suid = Lstat(dest_ / "d/suid");
  EXPECT_EQ(suid.st_mode & 07777, 04755u);
  EXPECT_EQ(suid.st_uid, 1000u);
  EXPECT_EQ(suid.st_gid, 1000u);
  EXPECT_EQ(suid.st_mtime, 1'400'000'000);
  EXPECT_EQ(ReadFile(dest_ / "d/suid"), "#!/bin/true\n");

  struct stat secret = Lstat(dest_ / "d/secret");
  EXPECT_EQ(secret.st_mode & 07777, 0600u);
  EXPECT_EQ(secret.st_uid, 0u);

  EXPECT_EQ(fs::read_symlink(dest_ / "d/rel"), "suid");
  EXPECT_EQ(Lstat(dest_ / "d/rel").st_mtime, 1'300'000'000);
  EXPECT_EQ(fs::read_symlink(dest_ / "d/abs"), "/usr/bin/true");
  EXPECT_EQ(fs::read_symlink(dest_ / "d/up"), "../d/secret");

  struct stat hl = Lstat(dest_ / "d/hl");
  EXPECT_EQ(hl.st_ino, suid.st_ino);
  EXPECT_EQ(hl.st_nlink, 2u);

  EXPECT_TRUE(fs::is_directory(dest_ / "empty"));
  EXPECT_TRUE(fs::is_empty(dest_ / "empty"));
  EXPECT_EQ(Lstat(dest_ / "empty").st_mode & 07777, 0700u);
  EXPECT_EQ(ReadFile(dest_ / "big"), big);

  if (xattrs) {
    EXPECT_EQ(GetXattr(dest_ / "d/x", "user.test"), "1");
  } else {
    GTEST_LOG_(INFO) << "filesystem refuses user xattrs; xattr check skipped";
  }
}

TEST_F(ArchiveTest, WithoutOwnersOrXattrs) {
  ExtractOptions opts;
  opts.preserve_owner = false;
  opts.xattrs = false;
  Extract({{.path = "f", .data = "x", .uid = 1000, .gid = 1000, .xattrs = {{"user.test", "1"}}}},
          opts);
  EXPECT_EQ(Lstat(dest_ / "f").st_uid, ::geteuid());
  EXPECT_EQ(GetXattr(dest_ / "f", "user.test"), std::nullopt);
}

TEST_F(ArchiveTest, AnXattrTheFilesystemRefusesIsAWarning) {
  // No filesystem knows a "bogus." namespace: setting it fails like an unsupported xattr does.
  ExtractStats stats =
      Extract({{.path = "f", .data = "x", .xattrs = {{"bogus.test", "1"}}}, {.path = "g"}});
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_GE(stats.warnings, 1u);
  EXPECT_EQ(ReadFile(dest_ / "f"), "x");
}

TEST_F(ArchiveTest, EveryCompressionLibarchiveDetects) {
  for (Filter f : {Filter::kNone, Filter::kGzip, Filter::kZstd, Filter::kXz}) {
    fs::remove_all(dest_);
    fs::create_directories(dest_);
    Extract({{.path = "a/b", .data = "hello"}}, {}, f);
    EXPECT_EQ(ReadFile(dest_ / "a/b"), "hello") << static_cast<int>(f);
  }
}

TEST_F(ArchiveTest, ReplacesFilesWithoutWritingIntoSharedInodes) {
  // dest_/f shares its inode with a file outside dest_ (as a deployment's files share inodes
  // with the ostree repo): extracting over it must replace the name, not rewrite the inode.
  WriteFileAtomic(dest_ / "f", "old", 0644);
  fs::create_hard_link(dest_ / "f", root_ / "keep");
  fs::create_directories(dest_ / "sub");
  WriteFileAtomic(dest_ / "sub/existing", "stays", 0644);
  fs::create_symlink(outside_ / "target", dest_ / "sl");
  Extract({{.path = "f", .data = "new"},
           {.path = "sub", .type = 'd', .perm = 0700},
           {.path = "sub/new", .data = "n"},
           {.path = "sl", .data = "replaced the symlink itself"}});
  EXPECT_EQ(ReadFile(dest_ / "f"), "new");
  EXPECT_EQ(ReadFile(root_ / "keep"), "old");
  EXPECT_EQ(ReadFile(dest_ / "sub/existing"), "stays");
  EXPECT_EQ(Lstat(dest_ / "sub").st_mode & 07777, 0700u);
  EXPECT_FALSE(fs::is_symlink(dest_ / "sl"));
  EXPECT_TRUE(fs::is_empty(outside_));
}

// Small files and symlinks are written by worker threads, the rest in archive order by the
// reader: whatever the thread count, an entry that names a path again wins over the earlier one,
// a hardlink finds its target written, and a symlink queued before a path through it is refused.
TEST_F(ArchiveTest, QueuedWritesKeepArchiveOrder) {
  const std::string big = Pattern(5 << 20, 11);  // over the queued-file limit: written inline
  std::vector<Spec> entries;
  for (int i = 0; i < 300; ++i) {
    entries.push_back({.path = "d" + std::to_string(i % 7) + "/f" + std::to_string(i),
                       .data = Pattern(1000 + i, i)});
  }
  entries.push_back({.path = "d1/f1", .data = "second"});              // file over queued file
  entries.push_back({.path = "d2/f2", .type = 'l', .link = "f9"});     // symlink over queued file
  entries.push_back({.path = "d3/f3", .data = big});                   // inline file over queued
  entries.push_back({.path = "d4/hl", .type = 'h', .link = "d4/f4"});  // hardlink to a queued file
  entries.push_back({.path = "d5/s", .type = 'l', .link = "f5"});
  entries.push_back({.path = "d5/s", .data = "file over queued symlink"});
  for (unsigned threads : {1u, 2u, 4u}) {
    SCOPED_TRACE(threads);
    fs::remove_all(dest_);
    fs::create_directory(dest_);
    ExtractOptions opts;
    opts.writer_threads = threads;
    ExtractStats stats = Extract(entries, opts);
    EXPECT_EQ(stats.entries, entries.size());
    EXPECT_EQ(ReadFile(dest_ / "d0/f0"), Pattern(1000, 0));
    EXPECT_EQ(ReadFile(dest_ / "d5/f299"), Pattern(1299, 299));  // 299 % 7 == 5
    EXPECT_EQ(ReadFile(dest_ / "d1/f1"), "second");
    EXPECT_EQ(fs::read_symlink(dest_ / "d2/f2"), "f9");
    EXPECT_EQ(ReadFile(dest_ / "d3/f3"), big);
    EXPECT_EQ(Lstat(dest_ / "d4/hl").st_ino, Lstat(dest_ / "d4/f4").st_ino);
    EXPECT_EQ(ReadFile(dest_ / "d5/s"), "file over queued symlink");
    EXPECT_FALSE(fs::is_symlink(dest_ / "d5/s"));
  }
}

// A worker's failure stops the extraction with its error, and nothing hangs.
TEST_F(ArchiveTest, AQueuedWriteThatFailsStopsTheExtraction) {
  fs::create_directories(dest_ / "d/blocker/inner");
  std::vector<Spec> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({.path = "d/f" + std::to_string(i), .data = "x"});
  entries.push_back({.path = "d/blocker", .data = "a file where a directory is"});
  for (int i = 50; i < 100; ++i)
    entries.push_back({.path = "d/f" + std::to_string(i), .data = "x"});
  try {
    Extract(entries);
    ADD_FAILURE() << "extracted over a directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kIo) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("test.tgz: extracting entry \"d/blocker\": a directory of that "
                                    "name is in the way"));
  }
  EXPECT_TRUE(fs::is_directory(dest_ / "d/blocker/inner"));
}

TEST_F(ArchiveTest, DestinationThroughASymlinkedParentWorks) {
  // /ostree -> sysroot/ostree on a real host: the destination's own path may hold symlinks.
  fs::create_directory_symlink(dest_, root_ / "alias");
  FileSource src([&] {
    fs::path tar = root_ / "t.tgz";
    WriteArchive(tar, {{.path = "a/b", .data = "x"}});
    return tar;
  }());
  ExtractTar(src, "t", root_ / "alias");
  EXPECT_EQ(ReadFile(dest_ / "a/b"), "x");
}

// ---------------------------------------------------------------------------------------------
// TarReader and nested archives

class NestedTest : public ArchiveTest {
 protected:
  // A seed-like layer: ostree.tgz (a tar.gz whose symlink objects point anywhere), manifest.json,
  // containers.list.
  fs::path MakeLayer(const std::string& inner_bytes_override = "") {
    fs::path inner = root_ / "ostree.tgz";
    WriteArchive(
        inner,
        {{.path = "./", .type = 'd', .perm = 0755},
         {.path = "./config", .data = "[core]\nmode=bare\n"},
         {.path = "./objects/ab", .type = 'd'},
         {.path = "./objects/ab/cdef.file", .data = Pattern(2 << 20, 3)},
         {.path = "./objects/ab/0123.file", .type = 'l', .link = "../../../../usr/lib/os-release"},
         {.path = "./refs/heads", .type = 'd'}});
    std::string inner_bytes = inner_bytes_override.empty() ? ReadFile(inner) : inner_bytes_override;
    fs::path layer = root_ / "layer.tar.gz";
    WriteArchive(layer,
                 {{.path = "ostree.tgz", .data = inner_bytes},
                  {.path = "./manifest.json", .data = R"({"seed_cluster_ocp_version":"4.16.1"})"},
                  {.path = "containers.list", .data = "quay.io/a@sha256:1\nquay.io/b\n"}});
    return layer;
  }
};

TEST_F(NestedTest, ExtractsAnInnerTarAndReadsFilesInOnePass) {
  fs::path layer = MakeLayer();
  fs::create_directories(dest_ / "repo");
  CountingSource src(layer);
  TarReader reader(src, "layer.tar.gz");
  ExtractOptions opts;
  opts.allow_escaping_symlinks = true;  // bare-repo symlink objects
  std::string manifest;
  std::vector<std::string> names;
  while (auto entry = reader.Next()) {
    names.push_back(entry->name);
    if (entry->name == "ostree.tgz") {
      EXPECT_EQ(entry->type, TarEntryType::kFile);
      ExtractStats stats = reader.ExtractNested(dest_ / "repo", opts);
      EXPECT_EQ(stats.entries, 6u);
      EXPECT_EQ(stats.bytes, (2u << 20) + 17u);
    } else if (entry->name == "manifest.json") {
      EXPECT_EQ(entry->path, "./manifest.json");
      manifest = reader.ReadAll();
    } else if (entry->name == "containers.list") {
      reader.CopyTo(dest_ / "containers.list", 0600);
    }
  }
  reader.Finish();
  EXPECT_EQ(names, (std::vector<std::string>{"ostree.tgz", "manifest.json", "containers.list"}));
  EXPECT_EQ(manifest, R"({"seed_cluster_ocp_version":"4.16.1"})");
  EXPECT_EQ(ReadFile(dest_ / "containers.list"), "quay.io/a@sha256:1\nquay.io/b\n");
  EXPECT_EQ(Lstat(dest_ / "containers.list").st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(dest_ / "repo/config"), "[core]\nmode=bare\n");
  EXPECT_EQ(ReadFile(dest_ / "repo/objects/ab/cdef.file"), Pattern(2 << 20, 3));
  EXPECT_EQ(fs::read_symlink(dest_ / "repo/objects/ab/0123.file"),
            "../../../../usr/lib/os-release");
  EXPECT_TRUE(fs::is_directory(dest_ / "repo/refs/heads"));
  // One pass: every byte of the layer was read once, and nothing extra was staged on disk.
  EXPECT_EQ(src.bytes, fs::file_size(layer));
  EXPECT_GE(src.finish_calls, 1);
  EXPECT_FALSE(fs::exists(dest_ / "ostree.tgz"));
}

TEST_F(NestedTest, EntrySourceWithExtractTarAndNestedErrorsNameBothArchives) {
  fs::path layer = MakeLayer();
  FileSource src(layer);
  TarReader reader(src, "layer.tar.gz");
  auto entry = reader.Next();
  ASSERT_TRUE(entry);
  ASSERT_EQ(entry->name, "ostree.tgz");
  EntrySource inner(reader);
  // Strict symlink rules: the repo's symlink objects are refused, naming the nested archive.
  fs::create_directories(dest_ / "repo");
  try {
    ExtractTar(inner, "layer.tar.gz: ostree.tgz", dest_ / "repo");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("layer.tar.gz: ostree.tgz: entry \"./objects/ab/0123.file\" "
                                    "is a symlink to \"../../../../usr/lib/os-release\""));
  }
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST_F(NestedTest, CorruptInnerArchiveIsInvalidNamingIt) {
  fs::path layer = MakeLayer("this is no gzip stream, though it is in a layer");
  FileSource src(layer);
  TarReader reader(src, "layer.tar.gz");
  ASSERT_TRUE(reader.Next());
  try {
    reader.ExtractNested(dest_);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("layer.tar.gz: ostree.tgz"));
  }
}

TEST_F(NestedTest, ReadAllIsCappedAndDataIsReadOnce) {
  fs::path layer = MakeLayer();
  FileSource src(layer);
  TarReader reader(src, "layer.tar.gz");
  ASSERT_TRUE(reader.Next());  // ostree.tgz
  try {
    reader.ReadAll(1024);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_THAT(e.what(), HasSubstr("layer.tar.gz: entry \"ostree.tgz\" is"));
    EXPECT_THAT(e.what(), HasSubstr("more than the 1024"));
  }
  auto manifest = reader.Next();
  ASSERT_TRUE(manifest);
  EXPECT_EQ(reader.ReadAll(), R"({"seed_cluster_ocp_version":"4.16.1"})");
  try {
    reader.ReadAll();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInternal) << e.what();
  }
  ASSERT_TRUE(reader.Next());
  EXPECT_FALSE(reader.Next());
  EXPECT_FALSE(reader.Next());
}

TEST_F(NestedTest, NonFilesCannotBeReadOrCopied) {
  fs::path tar = root_ / "t.tgz";
  WriteArchive(tar, {{.path = "d", .type = 'd'}, {.path = "l", .type = 'l', .link = "d"}});
  FileSource src(tar);
  TarReader reader(src, "t.tgz");
  auto d = reader.Next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, TarEntryType::kDirectory);
  EXPECT_THROW(reader.ReadAll(), Error);
  auto l = reader.Next();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->type, TarEntryType::kSymlink);
  EXPECT_EQ(l->link_target, "d");
  EXPECT_THROW(reader.CopyTo(dest_ / "x", 0644), Error);
  // CopyTo never follows a symlink planted at its destination.
  EXPECT_FALSE(fs::exists(dest_ / "x"));
}

// ---------------------------------------------------------------------------------------------
// TarWriter

struct Node {
  std::string type;
  unsigned mode = 0;
  unsigned uid = 0, gid = 0;
  long mtime = 0;
  std::string content;  // file content or symlink target
  std::optional<std::string> xattr;
  bool operator==(const Node&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Node& n) {
  return os << n.type << " mode=" << std::oct << n.mode << std::dec << " " << n.uid << ":" << n.gid
            << " mtime=" << n.mtime << " content=" << n.content.substr(0, 40)
            << " xattr=" << n.xattr.value_or("-");
}

std::map<std::string, Node> Snapshot(const fs::path& root) {
  std::map<std::string, Node> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st = Lstat(it->path());
    Node n;
    n.mode = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.mtime = st.st_mtime;
    if (S_ISDIR(st.st_mode)) {
      n.type = "dir";
    } else if (S_ISLNK(st.st_mode)) {
      n.type = "link";
      n.content = fs::read_symlink(it->path()).string();
      n.mode = 0;  // symlink modes are meaningless on Linux
    } else {
      n.type = "file nlink=" + std::to_string(st.st_nlink);
      n.content = ReadFile(it->path());
      n.xattr = GetXattr(it->path(), "user.test");
    }
    out[it->path().lexically_relative(root).string()] = n;
  }
  return out;
}

void SetMtime(const fs::path& p, time_t t) {
  timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

class WriterTest : public ArchiveTest {
 protected:
  // A /var-like tree with everything TarWriter must keep, and things to exclude.
  fs::path MakeTree() {
    fs::path src = root_ / "src";
    fs::create_directories(src / "etc");
    fs::create_directories(src / "empty");
    fs::create_directories(src / "log/journal");
    fs::create_directories(src / "tmp");
    fs::create_directories(src / "home/core");
    WriteFileAtomic(src / "etc/a", "alpha\n", 0640);
    WriteFileAtomic(src / "etc/suid", Pattern(1 << 20, 9), 04755);
    EXPECT_EQ(::chown((src / "etc/suid").c_str(), 1000, 1000), 0);
    fs::create_hard_link(src / "etc/a", src / "etc/h");
    fs::create_symlink("a", src / "etc/l");
    fs::create_symlink("/etc/a", src / "etc/abs");
    WriteFileAtomic(src / "log/journal/x", "log", 0644);
    WriteFileAtomic(src / "tmp/x", "tmp", 0644);
    WriteFileAtomic(src / "home/core/.bash_history", "ls\n", 0600);
    WriteFileAtomic(src / "home/core/keep", "k", 0600);
    fs::permissions(src / "empty", fs::perms(0700));
    xattrs_ = UserXattrsWork(src);
    if (xattrs_) {
      EXPECT_EQ(::setxattr((src / "etc/a").c_str(), "user.test", "1", 1, 0), 0);
    }
    time_t t = 1'600'000'000;
    for (const char* p : {"etc/a", "etc/suid", "etc/l", "etc/abs", "home/core/keep", "tmp/x"}) {
      SetMtime(src / p, t++);
    }
    for (const char* p : {"etc", "empty", "log", "tmp", "home/core", "home", "."}) {
      SetMtime(src / p, t++);
    }
    return src;
  }

  static bool Exclude(const std::string& rel) {
    return rel == "log" || rel.starts_with("tmp/") || rel.ends_with("/.bash_history");
  }

  bool xattrs_ = false;
};

TEST_F(WriterTest, TreeRoundTripsThroughExtractTarAndGnuTar) {
  fs::path src = MakeTree();
  auto expected = Snapshot(src);
  for (auto it = expected.begin(); it != expected.end();) {
    it = Exclude(it->first) || it->first.starts_with("log/") ? expected.erase(it) : std::next(it);
  }
  ASSERT_TRUE(expected.count("tmp"));
  ASSERT_FALSE(expected.count("home/core/.bash_history"));

  fs::path out = root_ / "var.tgz";
  {
    TarWriter w(out, Compression::kGzip);
    w.AddTree(src, "var", Exclude);
    w.Close();
  }
  FileSource in(out);
  ExtractTar(in, "var.tgz", dest_);
  auto got = Snapshot(dest_ / "var");
  EXPECT_EQ(got, expected);
  EXPECT_EQ(Lstat(dest_ / "var").st_mode & 07777, Lstat(src).st_mode & 07777);
  EXPECT_EQ(Lstat(dest_ / "var/etc/h").st_ino, Lstat(dest_ / "var/etc/a").st_ino);
  if (xattrs_) {
    EXPECT_EQ(GetXattr(dest_ / "var/etc/a", "user.test"), "1");
  }

  // GNU tar reads it the same way, xattrs included.
  fs::path gnu = root_ / "gnu";
  fs::create_directories(gnu);
  RunTool({"tar", "--xattrs", "--xattrs-include=*", "-xzpf", out.string(), "-C", gnu.string()});
  EXPECT_EQ(Snapshot(gnu / "var"), expected);
}

TEST_F(WriterTest, ReadsGnuTarArchivesMadeLikeTheSeedsOstreeTgz) {
  // lca-cli create makes ostree.tgz with: tar --selinux --xattrs --xattrs-include=* --acls
  // -czf ostree.tgz -C /ostree/repo .
  fs::path src = MakeTree();
  fs::path out = root_ / "ostree.tgz";
  RunTool({"tar", "--selinux", "--xattrs", "--xattrs-include=*", "--acls", "-czf", out.string(),
           "-C", src.string(), "."});
  FileSource in(out);
  ExtractTar(in, "ostree.tgz", dest_);
  EXPECT_EQ(Snapshot(dest_), Snapshot(src));
  EXPECT_EQ(Lstat(dest_ / "etc/h").st_ino, Lstat(dest_ / "etc/a").st_ino);
  if (xattrs_) {
    EXPECT_EQ(GetXattr(dest_ / "etc/a", "user.test"), "1");
  }
}

TEST_F(WriterTest, SameTreeGivesTheSameBytes) {
  fs::path src = MakeTree();
  for (const char* name : {"one.tgz", "two.tgz"}) {
    TarWriter w(root_ / name, Compression::kGzip);
    w.AddTree(src, ".", Exclude);
    w.Close();
  }
  EXPECT_EQ(ReadFile(root_ / "one.tgz"), ReadFile(root_ / "two.tgz"));
  // "." prefix: GNU tar's "-C src ." layout.
  auto listing = RunTool({"tar", "-tzf", (root_ / "one.tgz").string()}).stdout_data;
  EXPECT_THAT(listing, HasSubstr("./\n"));
  EXPECT_THAT(listing, HasSubstr("./etc/a\n"));
  EXPECT_THAT(listing, ::testing::Not(HasSubstr("log")));
}

TEST_F(WriterTest, NamedFilesFromDiskAndMemory) {
  WriteFileAtomic(root_ / "big", Pattern(3 << 20, 1), 0640);
  fs::path out = root_ / "layer.tar";
  {
    TarWriter w(out, Compression::kNone);
    w.AddFile("ostree.tgz", root_ / "big");
    w.AddData("manifest.json", "{}", 0600);
    w.AddData("etc.deletions", "");
    w.Close();
  }
  FileSource src(out);
  TarReader reader(src, "layer.tar");
  auto a = reader.Next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "ostree.tgz");
  EXPECT_EQ(a->mode, 0640u);
  EXPECT_EQ(a->size, 3 << 20);
  reader.CopyTo(dest_ / "ostree.tgz", 0644);
  EXPECT_EQ(ReadFile(dest_ / "ostree.tgz"), Pattern(3 << 20, 1));
  auto b = reader.Next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mode, 0600u);
  EXPECT_EQ(reader.ReadAll(), "{}");
  auto c = reader.Next();
  ASSERT_TRUE(c);
  EXPECT_EQ(reader.ReadAll(), "");
  EXPECT_FALSE(reader.Next());
  EXPECT_EQ(RunTool({"tar", "-tf", out.string()}).stdout_data,
            "ostree.tgz\nmanifest.json\netc.deletions\n");
}

TEST_F(WriterTest, AnUnclosedWriterLeavesNoFile) {
  fs::path out = root_ / "partial.tgz";
  {
    TarWriter w(out, Compression::kGzip);
    w.AddData("a", "x");
    EXPECT_TRUE(fs::exists(out));
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(WriterTest, SkipsFifos) {
  fs::path src = root_ / "src";
  fs::create_directories(src);
  ASSERT_EQ(::mkfifo((src / "pipe").c_str(), 0644), 0);
  WriteFileAtomic(src / "f", "x", 0644);
  fs::path out = root_ / "t.tgz";
  TarWriter w(out, Compression::kGzip);
  w.AddTree(src, "");
  w.Close();
  FileSource in(out);
  ExtractTar(in, "t.tgz", dest_);
  EXPECT_TRUE(fs::exists(dest_ / "f"));
  EXPECT_FALSE(fs::exists(dest_ / "pipe"));
}

TEST_F(ArchiveTest, SyncFilesystem) {
  EXPECT_NO_THROW(SyncFilesystem(dest_));
  EXPECT_THROW(SyncFilesystem(root_ / "missing"), Error);
}

// ---------------------------------------------------------------------------------------------
// A full filesystem: every failed write stops the extraction at once, naming the entry, the
// cause, and for ENOSPC what the entry needed and what was free. Before, libarchive's "Write
// failed" for a big file was only a warning and the extraction reported success.

class FullDiskTest : public ::testing::TestWithParam<test::SmallFs::Kind> {
 protected:
  void SetUp() override {
    small_ = std::make_unique<test::SmallFs>(GetParam(), tmp_ / "small", tmp_ / "small.img", 8);
    if (!small_->mounted()) GTEST_SKIP() << "no small filesystem: " << small_->why_not();
    dest_ = tmp_ / "small/dest";
    fs::create_directories(dest_);
  }

  // The kIo message of extracting `entries` into the small filesystem.
  std::string ExtractFails(const std::vector<Spec>& entries) {
    const fs::path tar = tmp_ / "in.tar";
    WriteArchive(tar, entries, Filter::kNone);
    try {
      FileSource src(tar);
      const ExtractStats stats = ExtractTar(src, "var.tgz", dest_);
      ADD_FAILURE() << "extraction into a full filesystem reported success with " << stats.warnings
                    << " warnings";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kIo) << e.what();
      return e.what();
    }
    return "";
  }

  test::TempDir tmp_{"lca-full-disk"};
  std::unique_ptr<test::SmallFs> small_;
  fs::path dest_;
};

std::string Random(std::size_t size, unsigned seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_P(FullDiskTest, ABigFileWrittenByTheReaderFailsNamingTheEntryAndTheSpace) {
  const std::string message =
      ExtractFails({{.path = "var", .type = 'd'},
                    {.path = "var/lib/big", .data = Random(std::size_t{16} << 20, 1)},
                    {.path = "var/lib/after", .data = "never written"}});
  EXPECT_THAT(message, HasSubstr("var.tgz: writing entry \"var/lib/big\": No space left on device "
                                 "(the entry needs 16.0 MiB, "));
  EXPECT_THAT(message, HasSubstr(" of it still unwritten; "));
  EXPECT_THAT(message, ::testing::ContainsRegex(
                           "still unwritten; [0-9.]+ (B|KiB|MiB) free on the filesystem of "));
  EXPECT_THAT(message, HasSubstr("free space there, then abort and retry"));
  EXPECT_FALSE(fs::exists(dest_ / "var/lib/after"));
}

TEST_P(FullDiskTest, SmallFilesWrittenByTheWorkersFailNamingTheEntryAndTheSpace) {
  std::vector<Spec> entries;
  for (int i = 0; i < 24; ++i) {
    entries.push_back({.path = "objects/" + std::to_string(10 + i) + ".file",
                       .data = Random(std::size_t{1} << 20, static_cast<unsigned>(i))});
  }
  const std::string message = ExtractFails(entries);
  EXPECT_THAT(message, ::testing::ContainsRegex(
                           "var.tgz: (writing|creating) entry \"objects/[0-9]+.file\": No space "
                           "left on device \\(the entry needs 1.0 MiB, "));
  EXPECT_THAT(message, HasSubstr("free on the filesystem of "));
}

INSTANTIATE_TEST_SUITE_P(Filesystems, FullDiskTest,
                         ::testing::Values(test::SmallFs::Kind::kExt4Loop,
                                           test::SmallFs::Kind::kTmpfs),
                         [](const auto& p) { return test::SmallFs::Name(p.param); });

}  // namespace
}  // namespace lca::stateroot
