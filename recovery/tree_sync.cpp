#include "recovery/tree_sync.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "recovery/xattrs.hpp"

namespace lca::recovery {
namespace {

namespace fs = std::filesystem;

std::string Normalize(std::string p) {
  while (p.rfind("./", 0) == 0) p.erase(0, 2);
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

struct stat Lstat(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) throw SystemError("lstat " + p.string(), errno);
  return st;
}

bool LstatIfExists(const fs::path& p, struct stat* st) {
  if (::lstat(p.c_str(), st) == 0) return true;
  if (errno == ENOENT) return false;
  throw SystemError("lstat " + p.string(), errno);
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) throw SystemError("opening directory " + dir.string(), errno);
  errno = 0;
  while (const dirent* de = ::readdir(d.get())) {
    const std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) throw SystemError("reading directory " + dir.string(), errno);
  std::sort(names.begin(), names.end());
  return names;
}

// A name beside `p` for writing its replacement; the rename over `p` is the commit.
fs::path TempBeside(const fs::path& p) {
  return p.parent_path() / (".lca-sync." + p.filename().string() + ".tmp");
}

bool SameContent(const fs::path& a, const fs::path& b) {
  UniqueFd fa(::open(a.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fa.get() < 0) throw SystemError("opening " + a.string(), errno);
  UniqueFd fb(::open(b.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fb.get() < 0) throw SystemError("opening " + b.string(), errno);
  std::vector<char> ba(1 << 16), bb(1 << 16);
  for (;;) {
    const ssize_t na = ::read(fa.get(), ba.data(), ba.size());
    if (na < 0) throw SystemError("reading " + a.string(), errno);
    ssize_t nb = 0;
    while (nb < na) {  // read exactly na bytes of b (or hit its end)
      const ssize_t r = ::read(fb.get(), bb.data() + nb, static_cast<std::size_t>(na - nb));
      if (r < 0) throw SystemError("reading " + b.string(), errno);
      if (r == 0) break;
      nb += r;
    }
    if (na != nb) return false;
    if (na == 0) return true;
    if (!std::equal(ba.begin(), ba.begin() + na, bb.begin())) return false;
  }
}

std::uint64_t CopyContent(const fs::path& from, const fs::path& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) throw SystemError("opening " + from.string(), errno);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) throw SystemError("creating " + to.string(), errno);
  std::vector<char> buf(1 << 20);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) throw SystemError("reading " + from.string(), errno);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(out.get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) throw SystemError("writing " + to.string(), errno);
      off += w;
    }
    total += static_cast<std::uint64_t>(n);
  }
  out.Close(to.string());
  return total;
}

void Rename(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    throw SystemError("renaming " + from.string() + " to " + to.string(), errno);
  }
}

class Syncer {
 public:
  explicit Syncer(const SyncOptions& opts) : opts_(opts) {}

  void Root(const fs::path& src, const fs::path& dst) {
    const struct stat sst = Lstat(src);
    if (!S_ISDIR(sst.st_mode)) throw Error(Errc::kInvalid, src.string() + " is not a directory");
    struct stat dst_st {};
    if (LstatIfExists(dst, &dst_st)) {
      if (!S_ISDIR(dst_st.st_mode)) {
        throw Error(Errc::kConflict, dst.string() + " exists and is not a directory");
      }
    } else if (::mkdir(dst.c_str(), 0700) != 0) {
      throw SystemError("creating " + dst.string(), errno);
    }
    Dir(src, dst, "", sst);
  }

  SyncStats stats;

 private:
  bool Excluded(const std::string& rel) const {
    return opts_.exclude != nullptr && opts_.exclude->Excluded(rel);
  }

  void Dir(const fs::path& s, const fs::path& d, const std::string& rel, const struct stat& sst) {
    const std::vector<std::string> names = ListDir(s);
    if (opts_.delete_extraneous) {
      const std::set<std::string> wanted(names.begin(), names.end());
      for (const std::string& n : ListDir(d)) {
        const std::string child_rel = rel.empty() ? n : rel + "/" + n;
        if (wanted.count(n) != 0 || Excluded(child_rel)) continue;
        RemoveAll(d / n);
        ++stats.removed;
      }
    }
    for (const std::string& n : names) {
      const std::string child_rel = rel.empty() ? n : rel + "/" + n;
      if (Excluded(child_rel)) continue;
      const fs::path sc = s / n;
      Entry(sc, d / n, child_rel, Lstat(sc));
    }
    // Last, so a read-only mode or an mtime is not undone by writing the children.
    Meta(s, d, sst);
  }

  void Entry(const fs::path& s, const fs::path& d, const std::string& rel, const struct stat& sst) {
    struct stat dst {};
    bool exists = LstatIfExists(d, &dst);
    const bool want_dir = S_ISDIR(sst.st_mode);
    if (exists &&
        (S_ISDIR(dst.st_mode) != want_dir || (dst.st_mode & S_IFMT) != (sst.st_mode & S_IFMT))) {
      RemoveAll(d);
      exists = false;
    }
    if (want_dir) {
      if (!exists) {
        if (::mkdir(d.c_str(), 0700) != 0) throw SystemError("creating " + d.string(), errno);
        ++stats.written;
      }
      Dir(s, d, rel, sst);
      return;
    }
    if (S_ISREG(sst.st_mode)) {
      File(s, d, sst, exists ? &dst : nullptr);
    } else if (S_ISLNK(sst.st_mode)) {
      Symlink(s, d, sst, exists);
    } else if (S_ISSOCK(sst.st_mode)) {
      // A socket is recreated by the program that listens on it; copying one makes no sense.
      spdlog::warn("{}: skipping socket", s.string());
      return;
    } else {
      Special(s, d, sst, exists ? &dst : nullptr);
    }
  }

  void File(const fs::path& s, const fs::path& d, const struct stat& sst, const struct stat* dst) {
    const std::pair<dev_t, ino_t> key{sst.st_dev, sst.st_ino};
    if (sst.st_nlink > 1) {
      auto it = links_.find(key);
      if (it != links_.end()) {
        // A second name of a file already copied: the same inode, not a second copy.
        struct stat first = Lstat(it->second);
        if (dst != nullptr && dst->st_dev == first.st_dev && dst->st_ino == first.st_ino) {
          ++stats.unchanged;
          return;
        }
        const fs::path tmp = TempBeside(d);
        RemoveAll(tmp);
        if (::link(it->second.c_str(), tmp.c_str()) != 0) {
          throw SystemError("linking " + tmp.string() + " to " + it->second.string(), errno);
        }
        Rename(tmp, d);
        ++stats.written;
        return;
      }
    }
    // A destination file that shares its inode with another name is not written in place:
    // the other name may be outside what this copy owns.
    if (dst != nullptr && dst->st_size == sst.st_size && SameContent(s, d) &&
        (dst->st_nlink == 1 || sst.st_nlink > 1)) {
      Meta(s, d, sst);
      ++stats.unchanged;
    } else {
      const fs::path tmp = TempBeside(d);
      RemoveAll(tmp);
      stats.bytes += CopyContent(s, tmp);
      Meta(s, tmp, sst);
      Rename(tmp, d);
      ++stats.written;
    }
    if (sst.st_nlink > 1) links_[key] = d;
  }

  void Symlink(const fs::path& s, const fs::path& d, const struct stat& sst, bool exists) {
    const std::string target = ReadLink(s);
    if (!exists || ReadLink(d) != target) {
      const fs::path tmp = TempBeside(d);
      RemoveAll(tmp);
      if (::symlink(target.c_str(), tmp.c_str()) != 0) {
        throw SystemError("creating symlink " + tmp.string(), errno);
      }
      Rename(tmp, d);
      ++stats.written;
    } else {
      ++stats.unchanged;
    }
    Meta(s, d, sst);
  }

  void Special(const fs::path& s, const fs::path& d, const struct stat& sst,
               const struct stat* dst) {
    if (dst != nullptr && dst->st_rdev == sst.st_rdev) {
      ++stats.unchanged;
    } else {
      const fs::path tmp = TempBeside(d);
      RemoveAll(tmp);
      if (::mknod(tmp.c_str(), (sst.st_mode & S_IFMT) | 0600, sst.st_rdev) != 0) {
        throw SystemError("creating " + tmp.string(), errno);
      }
      Rename(tmp, d);
      ++stats.written;
    }
    Meta(s, d, sst);
  }

  static std::string ReadLink(const fs::path& p) {
    std::string buf(4096, '\0');
    const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
    if (n < 0) throw SystemError("reading symlink " + p.string(), errno);
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

  // Owner first (chown clears setuid bits and file capabilities), then xattrs (ACLs), then the
  // mode (its group bits are the ACL mask, so it must agree with the ACL just written), then
  // the times.
  void Meta(const fs::path& s, const fs::path& d, const struct stat& sst) {
    const bool link = S_ISLNK(sst.st_mode);
    if (::lchown(d.c_str(), sst.st_uid, sst.st_gid) != 0) {
      throw SystemError("changing the owner of " + d.string(), errno);
    }
    stats.warnings += static_cast<std::uint64_t>(WriteXattrs(d, ReadXattrs(s)));
    if (!link && ::chmod(d.c_str(), sst.st_mode & 07777) != 0) {
      throw SystemError("changing the mode of " + d.string(), errno);
    }
    const struct timespec times[2] = {sst.st_atim, sst.st_mtim};
    if (::utimensat(AT_FDCWD, d.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      throw SystemError("setting the times of " + d.string(), errno);
    }
  }

  const SyncOptions& opts_;
  std::map<std::pair<dev_t, ino_t>, fs::path> links_;
};

}  // namespace

PathFilter::PathFilter(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    std::string n = Normalize(p);
    if (!n.empty()) patterns_.push_back(std::move(n));
  }
}

PathFilter PathFilter::FromList(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.erase(0, 1);
    if (!line.empty() && line.front() != '#') lines.push_back(line);
    start = end + 1;
  }
  return PathFilter(lines);
}

bool PathFilter::Excluded(std::string_view relative_path) const {
  if (patterns_.empty()) return false;
  const std::string rel = Normalize(std::string(relative_path));
  // The path itself or any of its parent directories.
  for (std::size_t end = rel.find('/');; end = rel.find('/', end + 1)) {
    const std::string prefix = end == std::string::npos ? rel : rel.substr(0, end);
    for (const auto& p : patterns_) {
      if (::fnmatch(p.c_str(), prefix.c_str(), FNM_PATHNAME) == 0) return true;
    }
    if (end == std::string::npos) return false;
  }
}

SyncStats SyncTree(const fs::path& src, const fs::path& dst, const SyncOptions& opts) {
  Syncer s(opts);
  WithContext("copying " + src.string() + " to " + dst.string(), [&] { s.Root(src, dst); });
  return s.stats;
}

void RemoveAll(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);  // does not follow symlinks
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw SystemError("removing " + path.string(), ec.value());
  }
}

}  // namespace lca::recovery
